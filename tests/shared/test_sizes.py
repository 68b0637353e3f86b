import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.sizes import (
    STANDARD_DIMENSIONS,
    Dimensions,
    PackageTooLarge,
    Size,
    SizeError,
    smallest_fitting_size,
)

sides = st.floats(min_value=0.1, max_value=40, allow_nan=False, allow_infinity=False)
boxes = st.builds(Dimensions, sides, sides, sides)


def fits_some_orientation(box: Dimensions, door: Dimensions) -> bool:
    """Brute force over all six orientations: the oracle for the sorted-sides rule."""
    door_sides = (door.length, door.width, door.height)
    return any(
        all(p <= d for p, d in zip(perm, door_sides, strict=True))
        for perm in itertools.permutations((box.length, box.width, box.height))
    )


@given(boxes)
def test_smallest_fitting_size_is_the_smallest_size_any_orientation_fits(box):
    fitting = [s for s in Size if fits_some_orientation(box, s.dimensions)]
    if not fitting:
        with pytest.raises(PackageTooLarge):
            smallest_fitting_size(box)
    else:
        assert smallest_fitting_size(box) == min(fitting, key=lambda s: s.rank)


@given(boxes, st.sampled_from(list(Size)))
def test_fits_in_agrees_with_brute_force_orientations(box, size):
    assert box.fits_in(size.dimensions) == fits_some_orientation(box, size.dimensions)


@given(boxes)
def test_fitting_is_invariant_under_rotation(box):
    rotated = Dimensions(box.height, box.length, box.width)
    for size in Size:
        assert box.fits_in(size.dimensions) == rotated.fits_in(size.dimensions)


def test_seed_sizes_and_order():
    assert [s.value for s in sorted(Size, key=lambda s: s.rank)] == [
        "small",
        "medium",
        "large",
        "xlarge",
    ]
    assert STANDARD_DIMENSIONS[Size.SMALL] == Dimensions(6, 8, 12)
    assert STANDARD_DIMENSIONS[Size.XLARGE] == Dimensions(24, 24, 36)


def test_package_standing_on_its_side_fits_small():
    # 12 x 6 x 8 is the small door turned over.
    assert smallest_fitting_size(Dimensions(12, 6, 8)) is Size.SMALL


def test_package_slightly_over_small_goes_medium():
    assert smallest_fitting_size(Dimensions(6.1, 8, 12)) is Size.MEDIUM


def test_package_larger_than_xlarge_is_rejected_with_clear_message():
    with pytest.raises(PackageTooLarge, match="fits no door"):
        smallest_fitting_size(Dimensions(25, 25, 25))


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, 1e9, "10", True])
def test_dimensions_refuse_nonsense(bad):
    with pytest.raises(SizeError):
        Dimensions(bad, 5, 5)


def test_size_parse_accepts_case_and_refuses_unknown():
    assert Size.parse(" Medium ") is Size.MEDIUM
    with pytest.raises(SizeError, match="expected one of small, medium, large, xlarge"):
        Size.parse("huge")


@given(st.sampled_from(list(Size)))
def test_fallbacks_start_with_the_size_and_grow(size):
    chain = size.fallbacks()
    assert chain[0] is size
    assert [s.rank for s in chain] == list(range(size.rank, 4))
