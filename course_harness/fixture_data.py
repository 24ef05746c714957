"""Load the fixture datasets the way the notebooks load the real ones, without a shared cache."""

from datasets import load_dataset

from course_harness.paths import FIXTURES


def smoltalk(cache_dir):
    return load_dataset(str(FIXTURES / "smoltalk"), "everyday-conversations", cache_dir=str(cache_dir))


def gsm8k(cache_dir):
    return load_dataset(str(FIXTURES / "gsm8k"), "main", cache_dir=str(cache_dir))


def the_stack_python(cache_dir):
    return load_dataset(
        str(FIXTURES / "the-stack-smol"), data_dir="data/python", split="train", cache_dir=str(cache_dir)
    )
