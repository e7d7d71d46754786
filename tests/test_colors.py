"""Class colours: distinct, readable with white text, and handed out so a project's classes differ."""

from app.colors import PALETTE, next_color
from tests.conftest import make_project


def contrast_with_white(hex_color: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(int(hex_color[i:i + 2], 16) / 255) for i in (1, 3, 5))
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


def test_every_colour_is_distinct_and_meets_wcag_aa_with_white_text():
    assert len(set(PALETTE)) == len(PALETTE) == 12
    for color in PALETTE:
        assert contrast_with_white(color) >= 4.5, color


def test_the_first_unused_colour_then_the_least_used():
    assert next_color([]) == PALETTE[0]
    assert next_color([PALETTE[0], None, PALETTE[2]]) == PALETTE[1]
    assert next_color(list(PALETTE) + [PALETTE[0]]) == PALETTE[1]


def test_a_deleted_class_frees_its_colour_and_the_others_keep_theirs(client):
    pid, (a, b, c) = make_project(client, classes=("a", "b", "c"))
    before = {x["id"]: x["color"] for x in client.get(f"/api/projects/{pid}").json()["classes"]}
    assert list(before.values()) == list(PALETTE[:3])
    assert client.delete(f"/api/classes/{b}").status_code == 204
    assert client.patch(f"/api/classes/{c}", json={"name": "renamed"}).json()["color"] == before[c]
    assert client.post(f"/api/projects/{pid}/classes", json={"name": "d"}).json()["color"] == before[b]
