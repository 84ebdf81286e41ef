"""The MLP of mlp_train_tf.py as a TF1 training graph: the forward pass, the loss, the
gradients `minimize` builds into the graph (`gradients/...`), and the update ops of
gradient descent, all in one graph before anything runs.

    graphscope trace examples/mlp_train_tf1.py --fw tf1 --backward

Each gradient op is linked (`grad_of`) to the forward op its `<op>_grad` scope names; the
updates (`GradientDescent/...`) are the `optimizer` phase.
"""

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1
rng = np.random.default_rng(0)


def dense(x, units, name, activation=None):
    with tf1.variable_scope(name):
        kernel = rng.normal(0.0, 0.5, (x.shape[1], units)).astype(np.float32)
        w = tf1.get_variable("kernel", kernel.shape, initializer=tf1.constant_initializer(kernel))
        b = tf1.get_variable("bias", [units], initializer=tf1.zeros_initializer())
        y = tf.matmul(x, w) + b
        return activation(y) if activation else y


graph = tf.Graph()
with graph.as_default():
    x = tf1.placeholder(tf.float32, [4, 3], name="x")
    target = tf1.placeholder(tf.float32, [4, 1], name="target")
    output = dense(dense(x, 8, "hidden", activation=tf.nn.relu), 1, "out")
    with tf1.name_scope("loss"):
        loss = tf.reduce_mean(tf.square(output - target))
    train_op = tf1.train.GradientDescentOptimizer(0.1).minimize(loss)

example_inputs = (rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 1)).astype(np.float32))
