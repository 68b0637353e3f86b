"""Turning a request's package_size and/or dimensions into a door size."""

from __future__ import annotations

from cloud import errors
from cloud.api.schemas import SizedRequest
from shared import sizes
from shared.sizes import Dimensions, Size


def resolve_size(body: SizedRequest) -> tuple[Size, Dimensions | None]:
    """The size to allocate, and the dimensions to check door interiors against.

    With both a size and dimensions, the size must hold the package.

    Raises:
        InvalidSize, PackageTooLarge.
    """
    dims: Dimensions | None = None
    try:
        if body.dimensions is not None:
            d = body.dimensions
            dims = Dimensions(d.length, d.width, d.height)
            fitting = sizes.smallest_fitting_size(dims)
        if body.package_size is not None:
            size = Size.parse(body.package_size)
            if dims is not None and size.rank < fitting.rank:
                raise errors.InvalidSize(
                    f"a package of these dimensions needs at least a {fitting.value} door",
                    details={"smallest_fitting_size": fitting.value},
                )
            return size, dims
    except sizes.PackageTooLarge as exc:
        raise errors.PackageTooLarge(str(exc)) from None
    except sizes.SizeError as exc:
        raise errors.InvalidSize(str(exc)) from None
    return fitting, dims
