"""The training tasks behind ``siamese-train --task``: one module per task."""
