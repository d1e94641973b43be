"""The fast data path (`PIPELINE fast`, the default): images decoded once (`decoded_images`),
augmented on the device as batched matrix products (`resample`, `tensor_transforms`,
`multi_crop`), and loaders of precomputed image features that replace dassl's image loaders
(`feature_loaders`). Imports `dassl` and the model's description (`method.model_spec`: the
test input, which transforms the fast path reproduces)."""
