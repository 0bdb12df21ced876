"""The course's lessons: one runnable, self-checking script per topic.

Each ``NN_topic.py`` module runs as ``python lessons/NN_topic.py [--quick] [--out DIR]``
or as ``tgcv lesson run NN``; ``_lesson.py`` holds the helpers they share.
"""

PROJECT = "tinygrad_cv"      # `tgcv lesson` checks this: "lessons" is a name other packages use too
