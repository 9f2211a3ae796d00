"""Stable printing of measured numbers."""

import math

import pytest

from attention_study.reporting import decade_bound, sig


@pytest.mark.parametrize(
    ("x", "text"), [(3.2e-7, "1e-06"), (1e-5, "1e-05"), (-2e-3, "1e-02"), (0.0, "0"), (12.0, "1e02")]
)
def test_decade_bound_is_the_power_of_ten_above(x, text):
    assert decade_bound(x) == text


def test_decade_bound_rejects_non_finite_numbers():
    with pytest.raises(ValueError, match="finite"):
        decade_bound(math.nan)


def test_sig_keeps_significant_digits_and_rejects_zero_digits():
    assert sig(0.012345) == "0.012"
    assert sig(123456, 3) == "1.23e+05"
    with pytest.raises(ValueError, match="digits must be >= 1"):
        sig(1.0, 0)
