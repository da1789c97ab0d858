"""Built-in examples: the shared-layer patterns of the Keras tutorials, as small tested models
(the basketball team-strength example lives in :mod:`siamese.basketball`)."""
