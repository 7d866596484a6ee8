"""The recommendation page cursor: what encode_cursor writes decodes back; nothing else gets
past decode_cursor."""

from __future__ import annotations

import base64

import pytest

from rhime.kit import errors
from rhime.recommendation import app as rec_app


def test_a_cursor_decodes_to_the_position_it_encodes() -> None:
    cursor = rec_app.encode_cursor(0.8125, "6b0db6f018ee6933daf23d7f")
    assert rec_app.decode_cursor(cursor) == (0.8125, "6b0db6f018ee6933daf23d7f")


@pytest.mark.parametrize(
    "text",
    [
        '["nan", "x"]',  # float("nan") in the query made the Mongo-wire server drop it: a 500
        '["inf", "x"]',
        '[1e999, "x"]',
        '[true, "x"]',
        '[0.5, {"$gt": ""}]',
        "[0.5, 7]",
        '[0.5, "x", 1]',
        '"ab"',
    ],
)
def test_a_cursor_it_did_not_write_is_refused(text: str) -> None:
    cursor = base64.urlsafe_b64encode(text.encode()).decode()
    with pytest.raises(errors.ApiError) as refused:
        rec_app.decode_cursor(cursor)
    assert refused.value.status == 400
    assert refused.value.items == [{"msg": "The cursor is not valid.", "field": "cursor"}]
