"""The same tf.cond and tf.while_loop as a TF1 graph with control flow v1: Switch/Merge for the
cond; Enter/Merge/Switch/NextIteration/Exit for the loop, whose back edge is a real cycle.

    graphscope trace examples/control_flow_tf1.py --fw tf1
"""

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1


def build() -> tf.Graph:
    was_v2 = tf1.control_flow_v2_enabled()
    tf1.disable_control_flow_v2()  # build with v1 ops; switched back below
    try:
        graph = tf.Graph()
        with graph.as_default():
            x = tf1.placeholder(tf.float32, [2, 3], name="x")
            y = tf.cond(tf.reduce_sum(x) > 0, lambda: x * 2.0, lambda: -x, name="cond")
            _, y = tf.while_loop(
                lambda i, v: i < 3, lambda i, v: (i + 1, tf.tanh(v) + 1.0), [tf.constant(0), y], name="loop"
            )
            tf.identity(y, name="result")
        return graph
    finally:
        if was_v2:
            tf1.enable_control_flow_v2()


graph = build()
example_inputs = (np.ones([2, 3], dtype=np.float32),)  # fed to the placeholder x when stepping
