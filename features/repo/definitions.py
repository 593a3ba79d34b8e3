"""Maestro's Feast definitions, generated from the workspace's ``features.yaml``.

``maestro init`` copies this file to ``$MAESTRO_HOME/feature_repo``; the objects come from
:func:`features.feast.definitions.feast_objects` over the declaration one directory up
(the packaged default when the workspace has none), so adding a feature is a YAML edit
and ``maestro apply``, never an edit here.
"""

from pathlib import Path

from features.declared import workspace_declaration
from features.feast.definitions import feast_objects

globals().update(feast_objects(workspace_declaration(Path(__file__).resolve().parent.parent)))
