"""Files in and out: audio (:mod:`~codec.io.audio`, with the project's one resampler), the
``.hylat`` latent file (:mod:`~codec.io.latent_file`), JSON-lines manifests
(:mod:`~codec.io.manifest`) and model folders of config + weights (:mod:`~codec.io.weights`)."""
