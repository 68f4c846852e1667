"""Frozen-backbone evaluation: how an encoder is read, one job per module.

- config.py: ProbeConfig and ProbeTaskConfig (the experiment's probe section).
- sets.py: the lists a probe reads (probe.tasks or the data section's) and the check that they load.
- features.py: tokens of every clip, extracted once per (encoder, data view) and cached.
- readouts.py: the table of readout kinds (attentive, ridge, ...) that read tasks off cached features.
- attentive.py / attentive_head.py: the attentive probe's fit and its network.
- ridge.py: the closed-form ridge readout.
- encoder.py: probe_encoder, every task and readout of one frozen encoder, and RankMe.
- checkpoints.py: probing a saved checkpoint or a random-init encoder, the result written as JSON.
- bench.py: the probe stage's speed (`salt-budget bench --stage probe`).
"""
