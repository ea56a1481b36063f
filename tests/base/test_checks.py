"""The shared value checks: plain types back, one message form, wrong types are both errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from base.checks import WrongTypeError, check_choice, check_int, check_number, located


def test_checks_return_plain_types():
    assert check_int("n", np.int64(3), 1) == 3 and type(check_int("n", np.int64(3), 1)) is int
    assert check_number("x", 2) == 2.0 and type(check_number("x", np.float32(0.5))) is float
    assert check_choice("mode", "a", ("a", "b")) == "a"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: check_int("n", 0, 1), "n must be an integer >= 1, but got n=0."),
        (lambda: check_int("n", 1.5), "n must be an integer, but got n=1.5."),
        (
            lambda: check_number("p", 1.0, 0.0, 1.0, high_open=True),
            "p must be a finite number in [0.0, 1.0), but got p=1.0.",
        ),
        (
            lambda: check_number("lr", 0.0, 0.0, low_open=True),
            "lr must be a finite number > 0.0, but got lr=0.0.",
        ),
        (lambda: check_number("x", math.nan), "x must be a finite number, but got x=nan."),
        (
            lambda: check_choice("mode", "median", ("a", "b")),
            "mode must be one of ('a', 'b'), but got mode='median'.",
        ),
    ],
)
def test_one_message_form(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (lambda v: check_int("n", v, 0), True),
        (lambda v: check_int("n", v, 0), "3"),
        (lambda v: check_int("n", v, 0), 3.0),
        (lambda v: check_number("x", v), True),
        (lambda v: check_number("x", v), "0.5"),
        (lambda v: check_number("x", v), None),
    ],
)
def test_a_wrong_type_is_a_type_error_and_a_value_error(check, value):
    with pytest.raises(WrongTypeError) as err:
        check(value)
    assert isinstance(err.value, TypeError) and isinstance(err.value, ValueError)


def test_located_prefixes_file_and_key():
    assert located("run.yaml", "study", "n must be ...") == "run.yaml: study: n must be ..."
