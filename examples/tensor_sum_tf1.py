"""Two tensors added, as a TF1 graph.

graphscope trace examples/tensor_sum_tf1.py --fw tf1
"""

import tensorflow as tf

graph = tf.Graph()
with graph.as_default():
    a = tf.compat.v1.placeholder(tf.float32, [2, 3], name="a")
    b = tf.compat.v1.placeholder(tf.float32, [2, 3], name="b")
    total = tf.add(a, b, name="sum")
