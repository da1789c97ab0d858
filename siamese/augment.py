"""Light random affine distortions of image batches, in the spirit of Koch et al. (2015).

Koch, Zemel and Salakhutdinov ("Siamese Neural Networks for One-shot Image Recognition")
enlarged the Omniglot training set with small affine distortions: a rotation of up to 10
degrees, shears of up to 0.3, scales between 0.8 and 1.2 and shifts of up to 2 pixels, each of
the seven components included with probability 0.5. :class:`AffineAugment` does the same with
TensorFlow ops (``ImageProjectiveTransformV3``), so it runs eagerly on NumPy batches and also
inside a ``tf.data`` pipeline.

Distortions are random but reproducible: they depend only on the augmenter's ``seed`` and on
the ``step`` passed with each call (TensorFlow's stateless random ops), never on global state.

Pixels that the distortion brings in from outside the image take the background value, by
default the median of the image's border pixels, per image and channel: 255 for Omniglot
(black strokes on white, as :func:`siamese.datasets.images.read_omniglot_background` returns
it) and 0 for Fashion-MNIST (a light item on black).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from siamese.errors import ConfigError

logger = logging.getLogger(__name__)

INTERPOLATIONS: tuple[str, ...] = ("bilinear", "nearest")
_N_PARAMS = 7  # angle, shear x, shear y, scale x, scale y, shift x, shift y


def _non_negative(name: str, value: Any, below: float = math.inf) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a number, got {value!r}") from exc
    if not 0.0 <= number < below:
        raise ConfigError(f"{name} must be at least 0 and below {below}, got {value!r}")
    return number


def _scale_range(scale: Sequence[float]) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in scale)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"scale must be a pair (low, high), got {scale!r}") from exc
    if not 0.0 < low <= high:
        raise ConfigError(f"scale must satisfy 0 < low <= high, got {scale!r}")
    return low, high


def _fill_option(fill: str | float) -> str | float:
    if fill == "border":
        return fill
    if isinstance(fill, str) or isinstance(fill, bool):
        raise ConfigError(f"fill must be 'border' or a number, got {fill!r}")
    try:
        value = float(fill)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"fill must be 'border' or a number, got {fill!r}") from exc
    if not math.isfinite(value):
        raise ConfigError(f"fill must be finite, got {fill!r}")
    return value


def inverse_affine(params: tf.Tensor, height: int | tf.Tensor, width: int | tf.Tensor) -> tf.Tensor:
    """Rows for ``ImageProjectiveTransformV3`` that apply affine maps about the image centre.

    Each map scales, then shears, then rotates about the centre pixel ``((W-1)/2, (H-1)/2)``,
    then shifts. In image coordinates (x to the right, y down) a positive angle turns the
    content clockwise on screen and a positive shift moves it right / down. The op wants the
    map from output to input pixels, so the rows hold each map's inverse.

    Args:
        params: ``float32`` tensor ``(n, 7)``: angle (radians), shear x, shear y, scale x,
            scale y, shift x (pixels), shift y (pixels). Shears with ``shear_x * shear_y == 1``
            make the map singular.
        height: Image height in pixels.
        width: Image width in pixels.

    Returns:
        ``float32`` tensor ``(n, 8)``: ``[a0, a1, a2, b0, b1, b2, 0, 0]`` per image.
    """
    params = tf.convert_to_tensor(params, tf.float32)
    angle, shear_x, shear_y, scale_x, scale_y, shift_x, shift_y = tf.unstack(params, num=_N_PARAMS, axis=1)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Forward linear part L = rotation @ shear @ scale, with shear = [[1, shear_x], [shear_y, 1]].
    l00 = (cos - sin * shear_y) * scale_x
    l01 = (cos * shear_x - sin) * scale_y
    l10 = (sin + cos * shear_y) * scale_x
    l11 = (sin * shear_x + cos) * scale_y
    det = l00 * l11 - l01 * l10
    i00, i01, i10, i11 = l11 / det, -l01 / det, -l10 / det, l00 / det
    centre_x = (tf.cast(width, tf.float32) - 1.0) / 2.0
    centre_y = (tf.cast(height, tf.float32) - 1.0) / 2.0
    # input = L^-1 (output - centre - shift) + centre
    dx, dy = centre_x + shift_x, centre_y + shift_y
    offset_x = centre_x - (i00 * dx + i01 * dy)
    offset_y = centre_y - (i10 * dx + i11 * dy)
    zeros = tf.zeros_like(angle)
    return tf.stack([i00, i01, offset_x, i10, i11, offset_y, zeros, zeros], axis=1)


def border_median(images: tf.Tensor) -> tf.Tensor:
    """Median of each image's border pixels, per channel (the lower middle for even counts).

    Args:
        images: Float tensor ``(n, H, W, C)``.

    Returns:
        Tensor ``(n, 1, 1, C)`` of the same dtype.
    """
    edges = [images[:, 0], images[:, -1], images[:, 1:-1, 0], images[:, 1:-1, -1]]
    border = tf.sort(tf.concat(edges, axis=1), axis=1)  # (n, L, C)
    middle = (tf.shape(border)[1] - 1) // 2
    return border[:, middle][:, None, None, :]


class AffineAugment:
    """Random affine distortions of ``(n, H, W, C)`` (or one ``(H, W, C)``) image batches.

    Each image gets its own map, built from seven values drawn uniformly and independently:
    an angle in ``[-rotation, rotation]`` degrees, shears x and y in ``[-shear, shear]``,
    scales x and y in ``[scale[0], scale[1]]`` and shifts x and y in
    ``[-translation, translation]`` pixels. Each of the seven is kept with probability
    ``component_probability`` and otherwise replaced by its neutral value (0, or 1 for scales),
    as in Koch et al. With all ranges neutral the output equals the input.

    Use it on NumPy arrays (returns a NumPy array) or on tensors, also inside ``tf.data``::

        augment = AffineAugment(seed=7)
        batch = augment(images[index_a], step=epoch * steps_per_epoch + step)
        dataset = dataset.batch(32).enumerate().map(lambda i, x: augment(x, step=i))

    The same ``(seed, step)`` gives the same distortions for the same batch size; different
    steps give independent ones, so pass a new step for every batch (and for each side of a
    pair).

    Args:
        rotation: Largest angle in degrees, in [0, 180).
        shear: Largest shear, in [0, 1).
        scale: ``(low, high)`` range of the scale factors, ``0 < low <= high``.
        translation: Largest shift in pixels, at least 0.
        component_probability: Chance that each of the seven components is applied, in [0, 1].
        fill: Value of pixels brought in from outside the image: ``"border"`` (the median of
            each image's border pixels, per channel: the background for Omniglot and
            Fashion-MNIST alike) or a number in the images' own scale.
        interpolation: ``"bilinear"`` or ``"nearest"``.
        seed: Integer seed of the random distortions.

    Raises:
        ConfigError: an option is out of range.
    """

    def __init__(
        self,
        *,
        rotation: float = 10.0,
        shear: float = 0.3,
        scale: Sequence[float] = (0.8, 1.2),
        translation: float = 2.0,
        component_probability: float = 0.5,
        fill: str | float = "border",
        interpolation: str = "bilinear",
        seed: int = 0,
    ) -> None:
        self.rotation = _non_negative("rotation", rotation, 180.0)
        self.shear = _non_negative("shear", shear, 1.0)
        self.scale = _scale_range(scale)
        self.translation = _non_negative("translation", translation)
        self.component_probability = _non_negative("component_probability", component_probability)
        if self.component_probability > 1.0:
            raise ConfigError(f"component_probability must be in [0, 1], got {component_probability!r}")
        self.fill = _fill_option(fill)
        if interpolation not in INTERPOLATIONS:
            raise ConfigError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        self.interpolation = interpolation
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        self.seed = int(seed)

    def params(self, n: int | tf.Tensor, step: int | tf.Tensor = 0) -> tf.Tensor:
        """The random parameters for a batch of ``n`` images at ``step``.

        Args:
            n: Number of images.
            step: Integer (or scalar integer tensor) that, with the seed, fixes the draw.

        Returns:
            ``float32`` tensor ``(n, 7)`` as :func:`inverse_affine` takes it.
        """
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        draw_seeds = tf.random.experimental.stateless_split(seed, num=2)
        shape = tf.stack([tf.cast(n, tf.int32), _N_PARAMS])
        unit = tf.random.stateless_uniform(shape, seed=draw_seeds[0])
        low_scale, high_scale = self.scale
        rotation = math.radians(self.rotation)
        shift = self.translation
        low = tf.constant([-rotation, -self.shear, -self.shear, low_scale, low_scale, -shift, -shift])
        high = tf.constant([rotation, self.shear, self.shear, high_scale, high_scale, shift, shift])
        values = low + (high - low) * unit
        keep = tf.random.stateless_uniform(shape, seed=draw_seeds[1]) < self.component_probability
        neutral = tf.constant([0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0])
        return tf.where(keep, values, neutral)

    def __call__(self, images: np.ndarray | tf.Tensor, step: int | tf.Tensor = 0) -> np.ndarray | tf.Tensor:
        """Distort a batch of images.

        Args:
            images: ``uint8`` or float images ``(n, H, W, C)``, or one image ``(H, W, C)``,
                as a NumPy array or a tensor.
            step: Integer (or scalar integer tensor) that, with the seed, fixes the draw.

        Returns:
            The distorted images with the input's shape and dtype: a NumPy array for a NumPy
            input, else a tensor. ``uint8`` results are rounded and clipped to 0..255.

        Raises:
            ConfigError: the images are not 3- or 4-dimensional, not ``uint8`` or float, or
                the fill value does not fit ``uint8``.
        """
        as_numpy = isinstance(images, np.ndarray)
        tensor = tf.convert_to_tensor(images)
        rank = tensor.shape.rank
        if rank not in (3, 4):
            raise ConfigError(f"images must be (n, H, W, C) or (H, W, C), got shape {tensor.shape}")
        dtype = tensor.dtype
        if dtype != tf.uint8 and not dtype.is_floating:
            raise ConfigError(f"images must be uint8 or float, got dtype {dtype.name}")
        if dtype == tf.uint8 and isinstance(self.fill, float) and not 0.0 <= self.fill <= 255.0:
            raise ConfigError(f"fill {self.fill} does not fit uint8 images (0..255)")
        batch = tensor if rank == 4 else tensor[None]
        result = self._distort(tf.cast(batch, tf.float32), step)
        if dtype == tf.uint8:
            result = tf.cast(tf.clip_by_value(tf.round(result), 0.0, 255.0), tf.uint8)
        else:
            result = tf.cast(result, dtype)
        if rank == 3:
            result = result[0]
        return result.numpy() if as_numpy else result

    def _distort(self, images: tf.Tensor, step: int | tf.Tensor) -> tf.Tensor:
        """Warp float images; the outside is filled by blending with a warped all-ones mask."""
        shape = tf.shape(images)
        height, width = shape[1], shape[2]
        transforms = inverse_affine(self.params(shape[0], step), height, width)
        mask = tf.ones_like(images[..., :1])
        warped = tf.raw_ops.ImageProjectiveTransformV3(
            images=tf.concat([images, mask], axis=-1),
            transforms=transforms,
            output_shape=tf.stack([height, width]),
            fill_value=tf.constant(0.0),
            interpolation=self.interpolation.upper(),
            fill_mode="CONSTANT",
        )
        background = border_median(images) if self.fill == "border" else tf.constant(self.fill)
        inside = warped[..., -1:]  # share of each output pixel drawn from inside the image
        return warped[..., :-1] + (1.0 - inside) * background
