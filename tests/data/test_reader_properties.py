"""Property-based tests of the readers: every layout round-trips; junk never crashes."""

from pathlib import Path
from tempfile import TemporaryDirectory

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from aerec.data.readers import read_ratings
from aerec.data.schema import RATINGS_SCHEMA
from aerec.data.synth import write_ratings
from aerec.errors import InputError

ratings_rows = st.dictionaries(
    keys=st.tuples(st.integers(1, 10**6), st.integers(1, 10**6)),
    values=st.tuples(st.sampled_from([x / 2 for x in range(1, 11)]), st.integers(0, 2**31)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(
    rows=ratings_rows,
    name=st.sampled_from(["r.csv", "ratings.csv", "r.dat", "u.data", "r.parquet"]),
)
def test_every_layout_round_trips(rows: dict, name: str) -> None:
    frame = pl.DataFrame(
        [(u, i, r, t) for (u, i), (r, t) in rows.items()], schema=RATINGS_SCHEMA, orient="row"
    )
    with TemporaryDirectory() as folder:
        path = Path(folder) / name
        write_ratings(frame, path)
        back = read_ratings(path)
    assert back.sort("user_id", "item_id").equals(frame.sort("user_id", "item_id"))


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(alphabet="0123456789,.:\t\n-abcNa ", max_size=120),
    header=st.sampled_from(["", "user_id,item_id,rating\n", "userId,movieId,rating,timestamp\n"]),
)
def test_junk_is_rejected_cleanly_or_valid(text: str, header: str) -> None:
    with TemporaryDirectory() as folder:
        path = Path(folder) / "junk.csv"
        path.write_text(header + text)
        try:
            frame = read_ratings(path)
        except InputError as error:
            assert str(path) in str(error) and "\n" not in str(error)
            return
    assert frame.height > 0
    assert (
        frame.select(pl.col("user_id", "item_id", "rating").null_count().sum_horizontal()).item()
        == 0
    )
    assert frame["rating"].is_between(0.5, 5.0).all()
