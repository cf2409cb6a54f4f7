"""Where a first call's time goes (issue 10): compile cost of the parts, in CPU seconds.

Two questions, each part in its own fresh process (alternating, several rounds; CPU
time of the process, all threads, which a shared machine disturbs less than wall time):

  batch parts   the one program of a first ``mj.fit_batch`` (gamma, B=2,000, n=200)
                against the hand-written jitted vmap Newton compiled in the same process:
                trace / lower / compile of each, the optimised program's fused kernels
                and instructions, and how often the model's special functions (lgamma
                and its derivatives digamma, polygamma) occur in the lowered program. Experiments (internals patched, results not used):
                ``noconclude`` drops the conclusion (information, covariance, flags),
                ``plainstep`` replaces Newton's proposal by a plain solve.
  second parts  a second new model (probit, n=5,000, k=4, after a first logit fit):
                the hand-written jitted Newton, ``jax.jit(jax.hessian(negll))`` alone,
                mlejax's derivative kernel, and ``mj.fit`` itself.

Run from the repository root:

    python benchmarks/first_call_parts.py --repeats 3
    python benchmarks/first_call_parts.py --parts kernel,hessian,hand --repeats 2
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PARTS = ("batch", "batch+noconclude", "batch+noconclude+plainstep", "hand", "hessian", "kernel", "fit")


def _tlc(f, *args, **static):
    """CPU seconds of trace + lower and of compile of ``jax.jit`` function ``f``, the
    program's size (fused kernels, instructions) and the compiled program."""
    c = [time.process_time()]
    lowered = f.trace(*args, **static).lower()
    c.append(time.process_time())
    compiled = lowered.compile()
    c.append(time.process_time())
    txt = compiled.as_text()
    size = f"{len(re.findall(r' fusion[(]', txt))} kernels, {len(re.findall(r'^[ ]+[^ ]+ = ', txt, re.M))} instructions"
    # instances of the model in the program: its special functions (value, gradient, Hessian of lgamma)
    lowered_text = lowered.as_text()
    special = "/".join(str(lowered_text.count(f"chlo.{op}")) for op in ("lgamma", "digamma", "polygamma"))
    if special != "0/0/0":
        size += f", lgamma/digamma/polygamma {special}"
    return c[1] - c[0], c[2] - c[1], size, compiled


def batch_part(variant):
    import bench_first_call as B
    import jax
    import jax.numpy as jnp
    import numpy as np

    import mlejax as mj
    from mlejax import _fit
    from mlejax._linalg import solve
    from mlejax.backends import _batch
    from mlejax.solvers import _newton

    x = jnp.asarray(np.random.default_rng(0).gamma(2.5, 1 / 1.5, size=(2000, 200)))

    def one(xi):
        u, se, it = B.hand_newton(lambda u: -B.gamma_ll({"shape": jnp.exp(u[0]), "rate": jnp.exp(u[1])}, xi),
                                  jnp.log(jnp.stack(B.gamma_moments(xi))))
        return jnp.exp(u), se, it

    hand = _tlc(jax.jit(jax.vmap(one)), x)
    if "noconclude" in variant:
        _fit.conclude = lambda xp, spec, dyn, st, *a: _fit.FitCore(*([st.x] * len(_fit.FitCore._fields)))._replace(
            n_iter=st.n_iter, status=st.status, params=spec.to_natural(st.x, dyn))
    if "plainstep" in variant:
        def plain(xp, x, g, hess, lam, tol):
            p = -solve(hess, g)
            dec = -(g @ p)
            return _newton.NewtonProposal(p, 0.5 * dec, dec <= tol, dec <= tol)

        _newton.newton_proposal = plain
    seen = {}
    run_chunks = _batch.run_chunks

    class Spy:  # fit_batch lowers and compiles run_chunks once: time the parts
        def lower(self, *a, **k):
            seen["mlejax"] = _tlc(run_chunks, *a, **k)

            class Lowered:
                def compile(self):
                    return seen["mlejax"][3]

            return Lowered()

    _batch.run_chunks = Spy()

    def start(xi):
        a, b = B.gamma_moments(xi)
        return {"shape": mj.Positive(a), "rate": mj.Positive(b)}

    jax.block_until_ready(mj.fit_batch(B.gamma_ll, None, x, init_fn=start))
    m = seen["mlejax"]
    return (f"hand trace+lower {hand[0]:.2f} compile {hand[1]:.2f} ({hand[2]}) | mlejax trace+lower {m[0]:.2f} "
            f"compile {m[1]:.2f} ({m[2]})")


def second_part(part):
    import bench_first_call as B
    import jax
    import jax.numpy as jnp
    import numpy as np

    import mlejax as mj
    from mlejax import _fit
    from mlejax._constraints import parametrize

    x, y = B.logit_data()
    d = {"X": jnp.asarray(x), "y": jnp.asarray(y)}
    mj.fit(B.logit_ll, jnp.zeros(4), d)  # the first model, untimed

    def negll(b, d):
        return -B.probit_ll(b, d)

    b0 = jnp.zeros(4)
    if part == "fit":
        c0 = time.process_time()
        mj.fit(B.probit_ll, b0, d)
        return f"mj.fit total {time.process_time() - c0:.2f}"
    if part == "hand":
        f, args = jax.jit(lambda d: B.hand_newton(lambda u: negll(u, d), b0)), (d,)
    elif part == "hessian":
        f, args = jax.jit(jax.hessian(negll)), (b0, d)
    else:
        spec, dyn = parametrize(b0)
        f = jax.jit(functools.partial(_fit._host_kernel, loglik=B.probit_ll, spec=spec, order=2))
        args = (np.zeros(4), False, jax.device_put(dyn), d)
    t, c, size, _ = _tlc(f, *args)
    return f"trace+lower {t:.2f} compile {c:.2f} total {t + c:.2f} ({size})"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of: {', '.join(PARTS)}")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        import jax

        jax.config.update("jax_enable_x64", True)
        jax.devices()
        part = args.child
        print("RESULT " + (batch_part(part) if part.startswith("batch") else second_part(part)))
        return
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, HERE]))
    print(f"load average {os.getloadavg()[0]:.1f}; CPU seconds (process time, all threads)")
    for r in range(args.repeats):
        for part in args.parts.split(","):
            out = subprocess.run([sys.executable, __file__, "--child", part], capture_output=True, text=True, env=env)
            line = [s for s in out.stdout.splitlines() if s.startswith("RESULT ")]
            print(f"round {r + 1} {part:28s} " + (line[-1][7:] if line else "failed: " + out.stderr[-300:]), flush=True)


if __name__ == "__main__":
    main()
