"""The three batching layouts, and what each changes in the notebook's ``SFTConfig``."""

CONFIGS = ("padding", "padding_free", "packing_bfd")


def sft_config_kwargs(name, settings):
    """What each configuration changes in the notebook's ``SFTConfig``."""
    if name == "padding":
        return {"max_length": settings["max_length"], "per_device_train_batch_size": settings["batch_size"]}
    if name == "padding_free":
        # TRL refuses padding_free with max_length and no packing (max_length would not be enforced);
        # every conversation already fits in max_length, so nothing is lost.
        return {"padding_free": True, "max_length": None, "per_device_train_batch_size": settings["batch_size"]}
    if name == "packing_bfd":
        return {
            "packing": True,
            "packing_strategy": "bfd",
            "max_length": settings["max_length"],
            "per_device_train_batch_size": settings["pack_batch_size"],
        }
    raise ValueError(name)
