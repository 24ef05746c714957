"""The course's offline harness: the tiny default, dataset fixtures, the notebook runner and the
maintainers' tools, behind one command, ``course`` (see ``course --help``)."""
