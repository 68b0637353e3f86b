"""Door sizes and the rule for which door a package fits.

Sizes are the four standard compartments of the seed design, measured in inches
(width x height x depth of the door's interior). A package fits a door when its
three dimensions, sorted, are each no larger than the door's, sorted: sorting both
boxes tries every axis-aligned orientation at once, since the best orientation
always pairs the smallest side with the smallest side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class SizeError(ValueError):
    """A size name or a package's dimensions cannot be used."""

    code = "invalid_size"


class PackageTooLarge(SizeError):
    """The package fits no door size, in any orientation."""

    code = "package_too_large"


class Size(StrEnum):
    """A door size, ordered from smallest to largest (see `rank`)."""

    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"
    XLARGE = "xlarge"

    @property
    def rank(self) -> int:
        """0 for the smallest size, rising with volume."""
        return _ORDER.index(self)

    @property
    def dimensions(self) -> Dimensions:
        """Interior dimensions of a standard door of this size, in inches."""
        return STANDARD_DIMENSIONS[self]

    def fallbacks(self) -> tuple[Size, ...]:
        """This size and every larger one, smallest first: the doors a parcel may use."""
        return _ORDER[self.rank :]

    @classmethod
    def parse(cls, value: str) -> Size:
        """Reads a size name such as ``"medium"`` (case-insensitive).

        Raises:
            SizeError: the name is not one of the four sizes.
        """
        try:
            return cls(value.strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in _ORDER)
            raise SizeError(f"unknown size {value!r}; expected one of {names}") from None


_ORDER: tuple[Size, ...] = (Size.SMALL, Size.MEDIUM, Size.LARGE, Size.XLARGE)

# Largest plausible side, so that a typo such as 1200 instead of 12.00 is caught
# as bad input rather than reported as merely "too large".
MAX_SIDE_INCHES = 240.0


@dataclass(frozen=True, slots=True)
class Dimensions:
    """A box in inches. Validates on construction: every side finite and positive."""

    length: float
    width: float
    height: float

    def __post_init__(self) -> None:
        for name in ("length", "width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SizeError(f"{name} must be a number of inches, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise SizeError(f"{name} must be a positive number of inches, got {value!r}")
            if value > MAX_SIDE_INCHES:
                raise SizeError(f"{name} of {value} inches is not a plausible parcel side")

    def sorted_sides(self) -> tuple[float, float, float]:
        a, b, c = sorted((self.length, self.width, self.height))
        return (a, b, c)

    def fits_in(self, container: Dimensions) -> bool:
        """True when this box goes into ``container`` in some orientation."""
        return all(
            mine <= theirs
            for mine, theirs in zip(self.sorted_sides(), container.sorted_sides(), strict=True)
        )


STANDARD_DIMENSIONS: dict[Size, Dimensions] = {
    Size.SMALL: Dimensions(6, 8, 12),
    Size.MEDIUM: Dimensions(10, 12, 18),
    Size.LARGE: Dimensions(18, 18, 24),
    Size.XLARGE: Dimensions(24, 24, 36),
}


def smallest_fitting_size(package: Dimensions) -> Size:
    """The smallest standard size the package fits, in any orientation.

    Raises:
        PackageTooLarge: the package fits not even the largest door.
    """
    for size in _ORDER:
        if package.fits_in(size.dimensions):
            return size
    largest = Size.XLARGE.dimensions
    raise PackageTooLarge(
        f"a {package.length}x{package.width}x{package.height} in package fits no door; "
        f"the largest is {largest.length:g}x{largest.width:g}x{largest.height:g} in"
    )
