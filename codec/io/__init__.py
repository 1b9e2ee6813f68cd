"""Files in and out: audio in (:mod:`~codec.io.audio`, with the project's one resampler),
outputs (:mod:`~codec.io.output`: formats, checks, atomic writing), the ``.hylat`` latent
file (:mod:`~codec.io.latent_file`), JSON-lines manifests (:mod:`~codec.io.manifest`) and
model folders of config + weights (:mod:`~codec.io.weights`)."""
