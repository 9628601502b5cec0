"""The three encoders on ESPnet's ``AbsEncoder``, one file each (:mod:`.conformer`,
:mod:`.branchformer`, :mod:`.e_branchformer`), and what they share (:mod:`.base`: construction,
option checks, input layers, the forward loop). Imports only :mod:`espnet_summarymixing.layers`."""
