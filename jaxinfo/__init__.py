"""jaxinfo: entropy, cross-entropy, KL divergence and their relatives for JAX.

Pure functions, batched over any leading axes, that compose under ``jit``,
``vmap``, ``grad`` and sharding, for probabilities, logits and integer labels,
with no NaN value or gradient where the mathematics is finite.
"""

from jaxinfo._bernoulli import binary_cross_entropy_from_logits as binary_cross_entropy_from_logits
from jaxinfo._bernoulli import binary_kl_divergence_from_logits as binary_kl_divergence_from_logits
from jaxinfo._divergences import js_distance as js_distance
from jaxinfo._divergences import js_divergence as js_divergence
from jaxinfo._divergences import renyi_divergence as renyi_divergence
from jaxinfo._divergences import renyi_entropy as renyi_entropy
from jaxinfo._estimators import binary_entropy as binary_entropy
from jaxinfo._estimators import entropy_from_counts as entropy_from_counts
from jaxinfo._estimators import entropy_from_counts_nsb as entropy_from_counts_nsb
from jaxinfo._estimators import perplexity as perplexity
from jaxinfo._gaussian import gaussian_entropy as gaussian_entropy
from jaxinfo._gaussian import gaussian_entropy_full as gaussian_entropy_full
from jaxinfo._gaussian import gaussian_kl_divergence as gaussian_kl_divergence
from jaxinfo._gaussian import gaussian_kl_divergence_full as gaussian_kl_divergence_full
from jaxinfo._joint import conditional_entropy as conditional_entropy
from jaxinfo._joint import joint_entropy as joint_entropy
from jaxinfo._joint import mutual_information as mutual_information
from jaxinfo._linear import LogitStats as LogitStats
from jaxinfo._linear import linear_cross_entropy as linear_cross_entropy
from jaxinfo._linear import linear_entropy as linear_entropy
from jaxinfo._linear_pair import linear_js_divergence as linear_js_divergence
from jaxinfo._linear_pair import linear_kl_divergence as linear_kl_divergence
from jaxinfo._monte_carlo import kl_estimate as kl_estimate
from jaxinfo._neighbours import differential_entropy as differential_entropy
from jaxinfo._neighbours import mutual_information_ksg as mutual_information_ksg
from jaxinfo._shannon import cross_entropy as cross_entropy
from jaxinfo._shannon import cross_entropy_from_labels as cross_entropy_from_labels
from jaxinfo._shannon import cross_entropy_from_logits as cross_entropy_from_logits
from jaxinfo._shannon import entropy as entropy
from jaxinfo._shannon import entropy_from_logits as entropy_from_logits
from jaxinfo._shannon import information as information
from jaxinfo._shannon import kl_divergence as kl_divergence
from jaxinfo._shannon import kl_divergence_from_logits as kl_divergence_from_logits
from jaxinfo._streaming import CompensatedSum as CompensatedSum
from jaxinfo._streaming import StreamingCrossEntropy as StreamingCrossEntropy
from jaxinfo._streaming import StreamingEntropy as StreamingEntropy
from jaxinfo._top_k import kl_divergence_from_top_k as kl_divergence_from_top_k
from jaxinfo._validation import check_distribution as check_distribution
from jaxinfo._validation import check_logits as check_logits
from jaxinfo._validation import check_top_k as check_top_k
from jaxinfo._validation import checkify_distribution as checkify_distribution
from jaxinfo._validation import checkify_logits as checkify_logits
from jaxinfo._validation import checkify_top_k as checkify_top_k

__version__ = "0.1.0"

__all__ = [
    "CompensatedSum",
    "LogitStats",
    "StreamingCrossEntropy",
    "StreamingEntropy",
    "binary_cross_entropy_from_logits",
    "binary_entropy",
    "binary_kl_divergence_from_logits",
    "check_distribution",
    "check_logits",
    "check_top_k",
    "checkify_distribution",
    "checkify_logits",
    "checkify_top_k",
    "conditional_entropy",
    "cross_entropy",
    "cross_entropy_from_labels",
    "cross_entropy_from_logits",
    "differential_entropy",
    "entropy",
    "entropy_from_counts",
    "entropy_from_counts_nsb",
    "entropy_from_logits",
    "gaussian_entropy",
    "gaussian_entropy_full",
    "gaussian_kl_divergence",
    "gaussian_kl_divergence_full",
    "information",
    "joint_entropy",
    "js_distance",
    "js_divergence",
    "kl_divergence",
    "kl_divergence_from_logits",
    "kl_divergence_from_top_k",
    "kl_estimate",
    "linear_cross_entropy",
    "linear_entropy",
    "linear_js_divergence",
    "linear_kl_divergence",
    "mutual_information",
    "mutual_information_ksg",
    "perplexity",
    "renyi_divergence",
    "renyi_entropy",
]
