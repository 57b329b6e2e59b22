"""``dogbreed profile``: a few training steps under ``torch.profiler`` and a report in plain language.

The report answers what SageMaker's profiler report answered for the course projects:

- step times, with the steps slower than mean + 3 standard deviations (the first step, which pays
  for initialisation, is reported on its own);
- how much of each step is spent waiting for the data loader versus computing;
- data-loader workers versus CPU cores, and pinned memory when training on a GPU;
- CPU and (when present) GPU utilisation and memory over the run;
- batch size versus utilisation (and, with ``--batch-sizes``, a short sweep of throughput);
- the operators that took the most time;

plus a Chrome trace (``trace.json``) of the profiled steps that opens in https://ui.perfetto.dev,
``chrome://tracing`` or TensorBoard's profiler plugin.

Measurement: every step is timed with wall clocks around ``next(loader)`` (data wait) and around
the forward/backward/optimizer step (compute, synchronised on a GPU); ``torch.profiler`` records
operators for a window of steps (``wait``/``warmup``/``active`` schedule) so its own overhead does
not distort the step times of the other steps; a background thread samples CPU, memory and GPU.

The package, by stage: ``records`` (what is measured: steps, resource samples, a run's result),
``measurement`` (running the steps, the resource sampler, ``torch.profiler``), ``analysis`` (findings and
summary numbers), ``rendering`` (``report.html``, its plots, ``profile.json``) and ``trainer_steps`` (the
training steps of ``dogbreed train``); the command is ``commands/profile.py``. Only ``measurement`` and
``trainer_steps`` import torch, so a result can be analysed and rendered without it.
"""
