"""The built-in categorical example: NCAA basketball team strength, as in DataCamp's
"Advanced Deep Learning with Keras" course.

- :mod:`siamese.basketball.data`: the games tables (the course's files, the Kaggle regular
  seasons rebuilt in the course's schema, a seeded simulated season);
- :mod:`siamese.basketball.models`: the team-strength model (one shared categorical
  Embedding, Subtract) and the models built on it (three-input, stacked, two-output,
  regressor + classifier), with their training and scoring helpers;
- :mod:`siamese.basketball.task`: ``siamese-train --task basketball``.
"""
