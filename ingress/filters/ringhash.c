/* The hash of ingress/filters/hashring.py's ring, in C: ingress/filters/ringhash.py is the
 * reference and says why. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "../scan.h"

static PyObject *hash64(PyObject *module, PyObject *arg) {
    const unsigned char *s;
    Py_ssize_t n;
    if (bytes_arg(arg, &s, &n) < 0)
        return NULL;
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33; /* murmur3's fmix64: every input bit moves every output bit */
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return PyLong_FromUnsignedLongLong(h);
}

static PyMethodDef methods[] = {
    {"hash64", (PyCFunction)hash64, METH_O,
     "hash64(data) -> int\n\nThe ring position of `data`: FNV-1a 64 then murmur3's fmix64."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ingress.filters.ringhash",
    "The hash ring's hash in C (ingress/filters/ringhash.py is the reference).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_ringhash(void) { return scan_module(&module); }
