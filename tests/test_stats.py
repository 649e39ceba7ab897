import random
import statistics

import pytest

from loadtests.stats import percentile


def test_known_lists():
    values = [15.0, 20.0, 35.0, 40.0, 50.0]
    assert percentile(values, 0.0) == 15.0
    assert percentile(values, 0.5) == 35.0
    assert percentile(values, 1.0) == 50.0
    assert percentile(values, 0.4) == pytest.approx(29.0)  # position 1.6: 20 + 0.6 * 15
    assert percentile(values, 0.95) == pytest.approx(48.0)  # position 3.8: 40 + 0.8 * 10
    assert percentile(list(range(1, 101)), 0.99) == pytest.approx(99.01)


def test_order_of_the_input_does_not_matter():
    values = [50.0, 15.0, 40.0, 20.0, 35.0]
    assert percentile(values, 0.5) == 35.0
    assert percentile(iter(values), 0.25) == 20.0


def test_even_count_interpolates_like_the_median():
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([4.0, 1.0], 0.5) == 2.5


def test_empty_is_none():
    assert percentile([], 0.5) is None
    assert percentile([], 0.99, ndigits=1) is None


def test_single_value():
    assert percentile([7.25], 0.0) == 7.25
    assert percentile([7.25], 0.5) == 7.25
    assert percentile([7.25], 0.99) == 7.25


def test_rounding():
    assert percentile([1.0, 2.0], 0.33, ndigits=1) == 1.3
    assert percentile([100.0, 200.0], 0.98766, ndigits=2) == 198.77


@pytest.mark.parametrize("fraction", [-0.1, 1.5, 95])
def test_fraction_out_of_range(fraction):
    with pytest.raises(ValueError, match="fraction"):
        percentile([1.0, 2.0], fraction)


def test_agrees_with_statistics():
    rng = random.Random(0)
    for size in (2, 3, 10, 101, 640):
        values = [rng.uniform(0, 5000) for _ in range(size)]
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        for k in (1, 25, 50, 95, 99):
            assert percentile(values, k / 100) == pytest.approx(cuts[k - 1])
        assert percentile(values, 0.5) == pytest.approx(statistics.median(values))
