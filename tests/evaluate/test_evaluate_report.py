import pytest

from echoic.evaluate.report import _colours


@pytest.mark.parametrize("n", [3, 10, 11, 20, 27])
def test_every_model_gets_its_own_colour(n):
    """A bar chart of 11 models once drew the first and the last in the same blue."""
    models = [f"model_{i}" for i in range(n)]
    colours = _colours(models)
    assert set(colours) == set(models)
    assert len({tuple(round(c, 6) for c in colour) for colour in colours.values()}) == n
