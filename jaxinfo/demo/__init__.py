r"""The optax demo: fit Q to P by gradient descent and watch H(P,Q) fall to H(P).

Cross-entropy splits into the entropy of the truth and the divergence of the model,

.. math::
   H(P, Q) = H(P) + D(P \,\|\, Q), \qquad D(P \,\|\, Q) \ge 0,

and ``H(P)`` does not depend on ``Q``. So minimising the cross-entropy over ``Q``
is minimising the KL divergence, and the best ``Q`` is ``P`` itself, where the
cross-entropy equals the entropy. :func:`fit` shows this on a real optimisation:
``Q = softmax(logits)`` starts uniform, an optax optimiser follows the gradient of
``H(P, Q)``, and the histories of ``H(P, Q)`` and ``D(P‖Q)`` show the gap close.

The package is also the command line demo, ``python -m jaxinfo.demo`` (or
``jaxinfo-demo``); ``--help`` lists its options.

The default optimiser
---------------------
:func:`default_optimizer` is Adam with ``b2 = 0.9`` and a learning rate that
decays to zero along a cosine. Plain ``optax.adam(0.1)`` stalls on this problem.
The gradient of the cross-entropy in the logit of class ``i`` is ``q_i - p_i``;
once ``q_i`` is near a small ``p_i`` (say 1e-4) that is orders of magnitude
below the gradients of about 0.1 of the first steps, which Adam's second moment
still remembers (``b2 = 0.999`` is a memory of about a thousand steps, the
whole fit). The steps of the rare classes collapse with their gradients: on
eight draws of 64 random 10-class distributions, plain Adam leaves a worst KL
of 1e-5 to 3e-4 nats after 500 steps. A short memory (``b2 = 0.9``) lets each
step follow its own shrinking gradient, and the decaying learning rate damps
the oscillation that Adam keeps up at a constant one; neither change alone is
enough. Together they bring the worst KL of the same draws below 6e-12 nats
(recomputed in float64) in the same 500 steps. The float32 values of the
measures are only resolved to about ``eps * (1 + H(P))``, some 1e-7 nats;
below that the recorded KL is rounding noise around zero.

Modules
-------
``_fit`` holds :func:`fit`, :class:`FitResult`, :func:`default_optimizer` and the
jitted programs behind them; ``_optimizers`` the optimiser table of the command
line and :func:`make_optimizer`; ``_cli`` the command line, :func:`main`, and its
tables; ``_trace`` the chunked fit that the command line reports from;
``_units`` the units shared by the tables and the plot; ``_plotting`` the matplotlib
plot; ``__main__`` runs :func:`main` for ``python -m jaxinfo.demo``.
"""

from jaxinfo.demo._cli import ARTICLE_P as ARTICLE_P
from jaxinfo.demo._cli import _random_distributions as _random_distributions
from jaxinfo.demo._cli import main as main
from jaxinfo.demo._fit import FitResult as FitResult
from jaxinfo.demo._fit import default_optimizer as default_optimizer
from jaxinfo.demo._fit import fit as fit
from jaxinfo.demo._optimizers import _OPTIMIZERS as _OPTIMIZERS
from jaxinfo.demo._optimizers import make_optimizer as make_optimizer
