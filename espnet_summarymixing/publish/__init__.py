"""Publishing and loading trained models: the zip (:mod:`.pack`), its model card (:mod:`.model_card`),
the Hugging Face Hub (:mod:`.hub`), and loading a model given as a zip, a folder or a hub id, with
audio at its sample rate (:mod:`.loading`). Imports nothing from the model code: a model is built
by ESPnet from its config."""
