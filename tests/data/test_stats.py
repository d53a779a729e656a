import polars as pl

from aerec.data.stats import describe_ratings, format_description


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
