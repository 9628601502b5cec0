"""Publishing trained models: the zip (:mod:`.pack`), its model card (:mod:`.model_card`) and the
Hugging Face Hub (:mod:`.hub`). Imports nothing from the model code: a model is built by ESPnet
from its config; finding and unpacking a model is :mod:`espnet_summarymixing.loading`'s."""
