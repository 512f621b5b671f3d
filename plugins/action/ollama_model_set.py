# Copyright: pmoves.fleet developers
# Apache License 2.0 (see galaxy.yml)
"""Action plugin of ollama_model_set: the action of ollama_model (the module's pull progress for the progress view).

The module writes every model it pulls to the same ``progress_file`` (pull_progress.ProgressFile keeps one entry
per model), so the controller-side file and the view show each of the set's pulls in turn.
"""

from __future__ import annotations

from ansible_collections.pmoves.fleet.plugins.action.ollama_model import ActionModule as OllamaModelAction


class ActionModule(OllamaModelAction):
    """The action of ollama_model, unchanged: no ``state`` option here, so it is always a present/pull."""
