"""What ``axis_name`` needs: classes split across the devices of a mesh axis.

What lives here: sums across devices of per-device partial sums, global class
ids (and the gather and the mask of the classes that global ids name), the
combination of per-device log-partitions, and shard_map's varying-axes types
(so that custom derivatives sum the cotangents of replicated inputs).
Outside ``shard_map`` (``axis_name=None``) each helper is the plain local
operation.

What does not: the kernels that call these (``_softmax.py``, ``_linear.py``,
``_top_k.py``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from jaxinfo._checks import AxisName

Array = jax.Array


def class_sum(x: Array, axis: int, axis_name: AxisName | None = None) -> Array:
    """Sum along the class axis (kept), and across the devices of ``axis_name``.

    ``lax.psum`` of a per-device partial sum: its transpose hands each device
    the cotangent of its own classes, so gradients stay local.
    """
    total = jnp.sum(x, axis=axis, keepdims=True)
    if axis_name is not None:
        total = lax.psum(total, axis_name)
    return total


def class_ids(shape: tuple[int, ...], axis: int, axis_name: AxisName | None = None) -> Array:
    """Global class index along ``axis``, broadcast to ``shape`` (int32).

    With ``axis_name`` the classes are split in equal contiguous blocks across
    the devices of that mesh axis, and device ``k`` holds the classes
    ``k * shape[axis] ... (k + 1) * shape[axis] - 1``.
    """
    ids = lax.broadcasted_iota(jnp.int32, shape, axis)
    if axis_name is not None:
        ids = ids + class_offset(shape[axis], axis_name)
    return ids


def class_offset(local_classes: int, axis_name: AxisName | None) -> Array | int:
    """Global id of this device's first class: ``axis_index * local_classes``."""
    if axis_name is None:
        return 0
    return lax.axis_index(axis_name).astype(jnp.int32) * local_classes


def num_classes(local_classes: int, axis_name: AxisName | None = None) -> int:
    """Number of classes in all, over the devices of ``axis_name``."""
    if axis_name is None:
        return local_classes
    return local_classes * lax.axis_size(axis_name)


def take_classes(
    x: Array, ids: Array, valid: Array, fill: float, axis_name: AxisName | None = None
) -> Array:
    """``x[..., ids]`` along the last (class) axis, for global class ids.

    ``ids`` has the shape of ``x`` but for the last axis, of any size ``k``;
    the ids of ``valid`` slots lie in ``[0, num_classes)``, and the other
    slots get ``fill`` (their ids may be anything). With ``axis_name`` each
    device gathers the ids it holds and a ``psum`` of ``k`` values per row
    gives every device all of them; nothing of the size of the classes
    crosses devices, and in reverse each device's cotangent stays on its own
    classes.
    """
    n = x.shape[-1]
    local = ids - class_offset(n, axis_name)
    got = jnp.take_along_axis(x, jnp.clip(local, 0, max(n - 1, 0)), axis=-1)
    if axis_name is not None:
        here = (local >= 0) & (local < n)
        got = lax.psum(jnp.where(here, got, jnp.zeros_like(got)), axis_name)
    return jnp.where(valid, got, jnp.full_like(got, fill))


def class_mask(
    shape: tuple[int, ...], ids: Array, valid: Array, axis_name: AxisName | None = None
) -> Array:
    """Boolean array of ``shape``, True at the classes named by the ``valid`` slots of ``ids``.

    The classes lie along the last axis of ``shape``, ``ids`` has ``shape``
    but for that axis (``k`` slots), and with ``axis_name`` ``shape`` is this
    device's block and the ids are global (each device marks the ones it
    holds). A scatter of the ``k`` slots per row, not a comparison of every
    class with every slot: ``O(k)`` writes per row after the zeros, whatever
    ``k``. Ids outside this device's block, and slots that are not valid,
    mark nothing (they never wrap round).
    """
    n = shape[-1]
    rows = math.prod(shape[:-1])
    local = ids - class_offset(n, axis_name)
    hit = valid & (local >= 0) & (local < n)
    index = jnp.where(hit, local, n).reshape(rows, ids.shape[-1])  # n: out of bounds, dropped
    mask = jnp.zeros((rows, n), jnp.bool_)
    mask = mask.at[jnp.arange(rows)[:, None], index].set(True, mode="drop")
    return mask.reshape(shape)


def combine_log_partitions(log_z: Array, axis_name: AxisName | None = None) -> Array:
    """``log Σ_k exp(log_z_k)`` over the devices ``k`` of ``axis_name`` (identity if None).

    Each device holds the log-partition of its own block of classes; the
    result is the log-partition over all of them, on every device. Shifted
    by the maximum (under ``stop_gradient``, as in :func:`shift_logits`), so
    the derivative with respect to each ``log_z_k`` is its device's share
    ``exp(log_z_k - result)``.
    """
    if axis_name is None:
        return log_z
    m = lax.pmax(lax.stop_gradient(log_z), axis_name)
    m = jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m))
    return m + jnp.log(lax.psum(jnp.exp(log_z - m), axis_name))


# --------------------------------------------------------------------------
# shard_map's varying-axes types
# --------------------------------------------------------------------------


def varying_axes(x: Array) -> frozenset:
    """The mesh axes along which ``x`` varies inside ``shard_map`` (else empty)."""
    aval = jax.typeof(x)
    mat = getattr(aval, "mat", None)  # jax >= 0.9: aval.mat.varying
    if mat is not None:
        return frozenset(mat.varying)
    return frozenset(getattr(aval, "vma", ()))


def match_varying(*xs: Array) -> list[Array]:
    """Casts arrays to vary along the union of the mesh axes any of them varies on.

    A ``custom_vjp`` must return cotangents typed like its inputs. Inside
    ``shard_map``, an input replicated across a mesh axis (``x`` across the
    devices that split the vocabulary, say) receives per-device partial
    cotangents; casting it to "varying" *before* the ``custom_vjp`` lets
    the cast's transpose (a ``psum``) add those partials up, as JAX's own
    autodiff does for ordinary operations. Outside ``shard_map`` this is a
    no-op that adds nothing to the program.
    """
    axes = [varying_axes(x) for x in xs]
    union = frozenset().union(*axes)
    out = []
    for x, have in zip(xs, axes, strict=True):
        missing = tuple(sorted(union - have, key=str))
        if missing:
            x = _pcast_varying(x, missing)
        out.append(x)
    return out


def _pcast_varying(x: Array, axes: tuple) -> Array:
    if hasattr(lax, "pcast"):
        return lax.pcast(x, axes, to="varying")
    return lax.pvary(x, axes)  # jax < 0.8.2
