import numpy as np
import polars as pl

from aerec.data.stats import describe_ratings, format_description, popularity_agreement


def test_describe_exact_example() -> None:
    frame = pl.DataFrame(
        {
            "user_id": [1, 1, 1, 2],
            "item_id": [10, 20, 30, 10],
            "rating": [4.0, 5.0, 4.0, 1.0],
            "timestamp": [0, 86_400, 60, 120],
        }
    )
    stats = describe_ratings(frame)
    assert (stats["ratings"], stats["users"], stats["items"]) == (4, 2, 3)
    assert stats["histogram"] == {"1": 1, "4": 2, "5": 1}
    assert stats["time_range"] == {"first": "1970-01-01 00:00:00", "last": "1970-01-02 00:00:00"}
    assert stats["per_user"] == {"min": 1, "median": 2.0, "mean": 2.0, "max": 3}
    assert stats["per_item"] == {"min": 1, "median": 1.0, "mean": 1.33, "max": 2}
    assert "4 ratings, 2 users, 3 items" in format_description("x", stats)


def test_popularity_agreement_known_answers() -> None:
    counts = np.array([50, 30, 20, 10, 5, 0])
    rho, shared = popularity_agreement(counts, counts * 3)
    assert (round(rho, 6), shared) == (1.0, 5)
    rho, shared = popularity_agreement(counts, np.array([1, 2, 3, 4, 5, 9]))
    assert (round(rho, 6), shared) == (-1.0, 5)  # the order reversed; item 6 unrated by one
    assert np.isnan(popularity_agreement(counts, np.array([1, 0, 0, 0, 0, 0]))[0])
