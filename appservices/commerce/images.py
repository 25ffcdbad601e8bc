"""Images staff upload for a shop (a campaign's picture, a product's photo): checked to be a
PNG, JPEG, WebP or GIF of at most 10 MiB, then stored in the homeserver's media repository
as the shop. The media API (POST /shops/<slug>/media) and the console's product forms both
call this, so both refuse the same files with the same sentence."""

from __future__ import annotations

import io
from typing import Any, Protocol

from PIL import Image, UnidentifiedImageError

from appservices.commerce.errors import CommerceError, InvalidInput
from appservices.commerce.shops import storage as store

MAX_IMAGE_BYTES = 10 * 1024 * 1024
IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp",
               "GIF": "image/gif"}


class ImageStore(Protocol):
    async def upload_image(self, merchant: store.Merchant, data: bytes, mimetype: str,
                           filename: str) -> str: ...


def too_large() -> CommerceError:
    return CommerceError(f"The image is over {MAX_IMAGE_BYTES // (1024 * 1024)} MiB; send a "
                         "smaller one.", errcode="M_TOO_LARGE", status=413)


def check_image(data: bytes, field: str = "body") -> tuple[str, int, int]:
    """The image's kind (PNG, JPEG, WEBP, GIF), width and height; or the refusal."""
    if len(data) > MAX_IMAGE_BYTES:
        raise too_large()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            kind, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        raise InvalidInput(field, "is not a PNG, JPEG, WebP or GIF image") from None
    if kind not in IMAGE_TYPES:
        raise InvalidInput(field, f"{kind} images are not accepted; use PNG, JPEG, WebP or GIF")
    return kind, width, height


async def store_image(matrix: ImageStore, merchant: store.Merchant, data: bytes,
                      field: str = "body") -> dict[str, Any]:
    """Check the image and upload it as the shop: {"image_mxc", "image_info"}."""
    kind, width, height = check_image(data, field)
    mimetype = IMAGE_TYPES[kind]
    filename = f"{merchant.slug}.{kind.lower()}"
    mxc = await matrix.upload_image(merchant, data, mimetype, filename)
    return {"image_mxc": mxc, "image_info": {"mimetype": mimetype, "size": len(data),
                                             "w": width, "h": height, "filename": filename}}
