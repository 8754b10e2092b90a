"""Types for annotating code that calls jaxinfo.

``ArrayLike`` is what every jaxinfo function takes as an array: a JAX or NumPy
array, a scalar, or (nested) lists and tuples of them. ``Axis`` is what its
``axis`` options take: an int, or a tuple of ints whose axes hold the outcomes
together, as one flattened axis.
"""

from jaxinfo._checks import ArrayLike as ArrayLike
from jaxinfo._checks import Axis as Axis

__all__ = ["ArrayLike", "Axis"]
