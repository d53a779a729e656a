import logging
from pathlib import Path

import polars as pl
import pytest
from conftest import shared_file

from aerec.data.layouts import detect_layout
from aerec.data.readers import read_movies, read_ratings
from aerec.errors import InputError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- the real MovieLens files -------------------------------------------------------------


def test_ml100k_counts() -> None:
    frame = read_ratings(shared_file("ml-100k/u.data"))
    assert (frame.height, frame["user_id"].n_unique(), frame["item_id"].n_unique()) == (
        100_000,
        943,
        1_682,
    )
    assert frame.schema == pl.Schema(
        {"user_id": pl.Int64, "item_id": pl.Int64, "rating": pl.Float32, "timestamp": pl.Int64}
    )


def test_ml_latest_small_counts_and_half_stars() -> None:
    frame = read_ratings(shared_file("ml-latest-small/ratings.csv"))
    assert (frame.height, frame["user_id"].n_unique(), frame["item_id"].n_unique()) == (
        100_836,
        610,
        9_724,
    )
    assert sorted(frame["rating"].unique().to_list()) == [x / 2 for x in range(1, 11)]
    assert frame["timestamp"].min() == 828124615  # CRLF endings did not leak into the last column


def test_u1_base_plus_test_is_u_data() -> None:
    whole = read_ratings(shared_file("ml-100k/u.data"))
    parts = pl.concat(
        [read_ratings(shared_file("ml-100k/u1.base")), read_ratings(shared_file("ml-100k/u1.test"))]
    )
    assert parts.sort(pl.all()).equals(whole.sort(pl.all()))


def test_ml1m_movies_latin1_titles() -> None:
    movies = read_movies(shared_file("ml-1m/movies.dat"))
    assert movies.height == 3_883
    titles = dict(movies.select("item_id", "title").iter_rows())
    assert titles[73] == "Misérables, Les (1995)"
    assert movies.filter(pl.col("item_id") == 1)["genres"].item() == "Animation|Children's|Comedy"


def test_ml100k_items_genres_from_flags() -> None:
    movies = read_movies(shared_file("ml-100k/u.item"))
    assert movies.height == 1_682
    toy_story = movies.filter(pl.col("item_id") == 1).row(0)
    assert toy_story == (1, "Toy Story (1995)", "Animation|Children's|Comedy")


def test_movies_csv_quoted_titles() -> None:
    movies = read_movies(shared_file("ml-latest-small/movies.csv"))
    assert movies.height == 9_742
    assert movies.filter(pl.col("item_id") == 11)["title"].item() == (
        "American President, The (1995)"
    )


# --- layouts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "layout"),
    [
        ("u.data", "1\t10\t4\t881250949\n2\t10\t3\t881250950\n", "tab"),
        ("ratings.dat", "1::10::4::978300760\n2::10::3::978300761\n", "dat"),
        (
            "ratings.csv",
            "userId,movieId,rating,timestamp\r\n1,10,4.0,1\r\n2,10,3.5,2\r\n",
            "csv-latest",
        ),
        ("canon.csv", "user_id,item_id,rating,timestamp\n1,10,4,1\n2,10,3.5,2\n", "csv"),
    ],
)
def test_each_layout_reads_to_the_same_frame(
    tmp_path: Path, name: str, text: str, layout: str
) -> None:
    path = write(tmp_path / name, text)
    assert detect_layout(path).name == layout
    frame = read_ratings(path)
    assert frame["user_id"].to_list() == [1, 2]
    assert frame["item_id"].to_list() == [10, 10]
    assert frame["rating"][0] == 4.0


def test_canonical_parquet_without_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    pl.DataFrame({"user_id": [1, 2], "item_id": [5, 6], "rating": [4.0, 2.0]}).write_parquet(path)
    frame = read_ratings(path)
    assert frame.columns == ["user_id", "item_id", "rating", "timestamp"]
    assert frame["timestamp"].null_count() == 2


def test_duplicates_keep_latest_and_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(
        tmp_path / "d.csv",
        "user_id,item_id,rating,timestamp\n1,5,2,200\n1,5,4,100\n1,6,3,50\n1,5,1,150\n",
    )
    with caplog.at_level(logging.WARNING):
        frame = read_ratings(path)
    assert frame.height == 2
    assert frame.filter(pl.col("item_id") == 5)["rating"].item() == 2.0  # timestamp 200 wins
    assert "2 duplicate" in caplog.text


# --- bad input: one clear line naming the file and the line -------------------------------


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("e.csv", "", "file is empty"),
        ("h.csv", "user_id,item_id,rating\n", "has no ratings"),
        ("m.csv", "user_id,rating\n1,4\n", "missing column(s) item_id"),
        ("l.csv", "userId,rating,timestamp\n1,4,5\n", "missing column(s) movieId"),
        ("n.csv", "user_id,item_id,rating\n1,2,4\n1,3,abc\n", ":3: rating is not a number: 'abc'"),
        ("t.data", "1\t2\t4\t5\n1\tx\t4\t5\n", ":2: item_id is not a number: 'x'"),
        ("r.csv", "user_id,item_id,rating\n1,2,4\n1,3,7\n", ":3: rating 7 outside the scale"),
        ("z.csv", "user_id,item_id,rating\n1,2,0\n", ":2: rating 0 outside the scale"),
        ("nan.csv", "user_id,item_id,rating\n1,2,4\n1,3,NaN\n", ":3: rating is NaN"),
        ("v.csv", "user_id,item_id,rating\n1,2,4\n1,,4\n", ":3: missing value in column item_id"),
        ("nh.csv", "1,2,4\n", "no header line"),
        ("x.txt", "hello world\n", "unrecognised ratings layout"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path / name, text)
    with pytest.raises(InputError) as caught:
        read_ratings(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)
    assert caught.value.exit_code == 2
    assert "\n" not in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_ratings(tmp_path / "absent.csv")


def test_float_ids_must_be_whole_numbers(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    pl.DataFrame({"user_id": [7.0, 7.2, 7.9], "item_id": [1, 2, 3], "rating": 4.0}).write_parquet(
        bad
    )
    with pytest.raises(InputError, match=r"bad.parquet:3: user_id is not an integer: 7.2"):
        read_ratings(bad)
    good = tmp_path / "good.parquet"
    pl.DataFrame({"user_id": [7.0, 8.0], "item_id": [1.0, 2.0], "rating": 4.0}).write_parquet(good)
    assert read_ratings(good)["user_id"].to_list() == [7, 8]


def test_parquet_with_ml_latest_names_reads_like_its_csv(
    tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """Parquet with userId,movieId,... is read as the same file in CSV is, by every reader
    (the Ray engine's blocks go through the same renaming)."""
    from aerec.data.readers import canonical_block, read_rating_chunks

    parquet = tmp_path / "ratings.parquet"
    pl.read_csv(tiny_data[0]).write_parquet(parquet)
    want = read_ratings(tiny_data[0])
    assert read_ratings(parquet).equals(want)
    assert pl.concat(read_rating_chunks(parquet, chunk_rows=500)).equals(
        pl.concat(read_rating_chunks(tiny_data[0], chunk_rows=500))
    )
    block = canonical_block(parquet, pl.read_parquet(parquet))
    assert block.sort("user_id", "item_id").equals(want.sort("user_id", "item_id"))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_other_column_names_are_named_with_the_expected_ones(
    tiny_data: tuple[Path, Path], tmp_path: Path, suffix: str
) -> None:
    frame = pl.read_csv(tiny_data[0]).rename({"userId": "uid", "movieId": "mid"})
    path = tmp_path / f"other{suffix}"
    if suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    with pytest.raises(InputError) as raised:
        read_ratings(path)
    message = str(raised.value)
    assert message.startswith(str(path)) and "'uid', 'mid'" in message
    assert "expected user_id,item_id,rating[,timestamp] (or ml-latest's userId,movieId" in message
