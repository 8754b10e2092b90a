"""jaxinfo: entropy, cross-entropy and KL divergence for JAX.

Pure functions, batched over any leading axes, that compose under ``jit``,
``vmap``, ``grad`` and sharding, for probabilities, logits and integer labels,
with no NaN value or gradient where the mathematics is finite.
"""

from jaxinfo._shannon import cross_entropy as cross_entropy
from jaxinfo._shannon import cross_entropy_from_labels as cross_entropy_from_labels
from jaxinfo._shannon import cross_entropy_from_logits as cross_entropy_from_logits
from jaxinfo._shannon import entropy as entropy
from jaxinfo._shannon import entropy_from_logits as entropy_from_logits
from jaxinfo._shannon import information as information
from jaxinfo._shannon import kl_divergence as kl_divergence
from jaxinfo._shannon import kl_divergence_from_logits as kl_divergence_from_logits

__version__ = "0.1.0"

__all__ = [
    "cross_entropy",
    "cross_entropy_from_labels",
    "cross_entropy_from_logits",
    "entropy",
    "entropy_from_logits",
    "information",
    "kl_divergence",
    "kl_divergence_from_logits",
]
