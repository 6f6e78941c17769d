"""Measurement commands, each run as ``python -m robosf_assets.bench.<name>``: they time or
probe the pipeline's pieces and print (or save) what they measured; no asset imports them.

- speed: :mod:`.sim` (simulator throughput), :mod:`.ppo_throughput` (PPO training
  env-steps/s), :mod:`.record` (dataset recording and validation throughput);
- difficulty and calibration: :mod:`.difficulty` (how hard a scenario is for fixed
  controllers), :mod:`.calibrate` (PPO-from-scratch calibration runs), :mod:`.settings`
  (PPO settings side by side), :mod:`.expert` (expert training budget),
  :mod:`.finetune_ablation` (ways of starting PPO from a BC policy).

Not to be confused with :mod:`robosf_assets.benchmark`, the library that computes the
comparison's statistics and writes its reports (the pipeline's ``comparison_report`` and
``benchmark_summary`` assets call it).
"""
