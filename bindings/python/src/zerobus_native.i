/*
 * zerobus_native.i - SWIG interface of the Python binding (C module zerobus._native, SWIG proxy zerobus.native).
 *
 * The public C ABI (include/zerobus_abi.h) is wrapped directly where a typemap is
 * enough: `zerobus_error **` out-parameters become Python exceptions, `T **out`
 * out-parameters become return values, and blocking calls release the GIL.
 * The hot paths (ingest of one record or a batch, event polling, unacked records)
 * and the headers-provider trampoline are small C helpers in the %inline block
 * below, because they work on Python objects directly:
 *  - record payloads are passed to the core as pointers into the Python objects
 *    (bytes, or the UTF-8 cache of a str) without a copy in Python; the core
 *    copies them before the call returns;
 *  - a batch is a list whose item pointers go straight into the core's arrays;
 *  - ingest first tries ZEROBUS_INGEST_NONBLOCK with the GIL held (no thread
 *    switch on the common path) and only when the queue is full waits again with
 *    the GIL released;
 *  - events (acks coalesced into ranges, errors, log lines) come back as a list
 *    of tuples from zerobus_stream_poll_events(), waited for without the GIL.
 *
 * Exceptions are built by a Python factory registered with set_error_factory(),
 * so the classes (zerobus.ZerobusException, NonRetriableException) live in
 * Python. Non-bytes records are converted by a Python function registered with
 * set_record_converter().
 */
%module(package="zerobus") native

%{
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include "zerobus_abi.h"

/* Python callables registered by zerobus._core at import time (strong refs). */
static PyObject *zbpy_error_factory = NULL;
static PyObject *zbpy_record_converter = NULL;
/* Set by zerobus._core's atexit hook: from then on the trampolines called on
 * core threads must not touch the interpreter. */
static volatile int zbpy_shutting_down = 0;

/* Builds the Python exception for a core error and sets it as the current
 * exception. Always returns NULL (for `return zbpy_raise(...)`). */
static PyObject *zbpy_raise_fields(int32_t code, const char *message, int32_t retryable,
                                   int32_t grpc_status, int32_t http_status) {
  if (!zbpy_error_factory) {
    PyErr_Format(PyExc_RuntimeError, "%s: %s", zerobus_status_name(code),
                 message ? message : "");
    return NULL;
  }
  PyObject *exc = PyObject_CallFunction(zbpy_error_factory, "isziii", (int)code,
                                        zerobus_status_name(code), message ? message : "",
                                        (int)retryable, (int)grpc_status, (int)http_status);
  if (exc) {
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
  }
  return NULL;
}

/* Raises `err` (or a generic error for `status` when err is NULL), then frees err. */
static PyObject *zbpy_raise(zerobus_status status, zerobus_error *err) {
  if (err) {
    zbpy_raise_fields(zerobus_error_code(err), zerobus_error_message(err),
                      zerobus_error_retryable(err), zerobus_error_grpc_status(err),
                      zerobus_error_http_status(err));
    zerobus_error_destroy(err);
  } else {
    zbpy_raise_fields(status, zerobus_status_str(status), 0, -1, -1);
  }
  return NULL;
}

/* A record's payload: a pointer into `obj` (kept alive by the caller), or into
 * `*keep` (a converted object the caller must release). 0 on success, -1 with a
 * Python exception set. */
static int zbpy_record_buffer(PyObject *obj, int json, const char **data, size_t *len,
                              PyObject **keep) {
  *keep = NULL;
  if (PyBytes_CheckExact(obj)) {
    *data = PyBytes_AS_STRING(obj);
    *len = (size_t)PyBytes_GET_SIZE(obj);
    return 0;
  }
  if (json && PyUnicode_CheckExact(obj)) {
    Py_ssize_t n = 0;
    const char *p = PyUnicode_AsUTF8AndSize(obj, &n);
    if (!p) return -1;
    *data = p;
    *len = (size_t)n;
    return 0;
  }
  if (!zbpy_record_converter) {
    PyErr_SetString(PyExc_TypeError, "record must be bytes");
    return -1;
  }
  /* dict, protobuf Message, bytes subclasses, bytearray...: converted in Python,
   * which raises TypeError for anything the stream does not accept. */
  PyObject *conv = PyObject_CallFunction(zbpy_record_converter, "Oi", obj, json);
  if (!conv) return -1;
  if (PyBytes_CheckExact(conv)) {
    *data = PyBytes_AS_STRING(conv);
    *len = (size_t)PyBytes_GET_SIZE(conv);
  } else if (PyUnicode_CheckExact(conv)) {
    Py_ssize_t n = 0;
    const char *p = PyUnicode_AsUTF8AndSize(conv, &n);
    if (!p) {
      Py_DECREF(conv);
      return -1;
    }
    *data = p;
    *len = (size_t)n;
  } else {
    Py_DECREF(conv);
    PyErr_SetString(PyExc_TypeError, "record converter must return bytes or str");
    return -1;
  }
  *keep = conv;
  return 0;
}

/* ---- headers provider trampoline (runs on a core thread) ---- */

static int32_t zbpy_headers_fail_from_exception(zerobus_headers *out) {
  PyObject *type = NULL, *value = NULL, *tb = NULL;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  int32_t retryable = 1;
  if (value) {
    /* NonRetriableException (or anything with retryable == False) is final. */
    PyObject *r = PyObject_GetAttrString(value, "retryable");
    if (r) {
      if (r == Py_False) retryable = 0;
      Py_DECREF(r);
    } else {
      PyErr_Clear();
    }
  }
  const char *msg = NULL;
  PyObject *text = value ? PyObject_Str(value) : NULL;
  PyObject *tname = type ? PyObject_GetAttrString(type, "__name__") : NULL;
  PyObject *full = NULL;
  if (text && tname) full = PyUnicode_FromFormat("headers provider raised %U: %U", tname, text);
  if (full) msg = PyUnicode_AsUTF8(full);
  if (!msg) {
    PyErr_Clear();
    msg = "headers provider raised an exception";
  }
  zerobus_headers_fail(out, msg, retryable);
  Py_XDECREF(full);
  Py_XDECREF(tname);
  Py_XDECREF(text);
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  PyErr_Clear();
  return ZEROBUS_ERR_HEADERS_PROVIDER;
}

static const char *zbpy_header_text(PyObject *o) {
  if (PyUnicode_Check(o)) return PyUnicode_AsUTF8(o);
  if (PyBytes_Check(o)) return PyBytes_AsString(o);
  PyErr_Format(PyExc_TypeError, "header names and values must be str, not %.100s",
               Py_TYPE(o)->tp_name);
  return NULL;
}

static int32_t zbpy_headers_cb(void *user_data, zerobus_headers *out) {
  if (zbpy_shutting_down || !Py_IsInitialized()) {
    zerobus_headers_fail(out, "the Python interpreter is shutting down", 0);
    return ZEROBUS_ERR_HEADERS_PROVIDER;
  }
  PyGILState_STATE gil = PyGILState_Ensure();
  int32_t rc = ZEROBUS_OK;
  PyObject *provider = (PyObject *)user_data;
  PyObject *result = PyObject_CallMethod(provider, "get_headers", NULL);
  PyObject *items = NULL, *seq = NULL;
  if (!result) goto fail;
  if (PyDict_Check(result)) {
    items = PyDict_Items(result);
    if (!items) goto fail;
  } else {
    items = result;
    Py_INCREF(items);
  }
  seq = PySequence_Fast(items, "get_headers() must return a list of (name, value) pairs");
  if (!seq) goto fail;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *pair = PySequence_Fast_GET_ITEM(seq, i);
    if (!PyTuple_Check(pair) && !PyList_Check(pair)) {
      PyErr_Format(PyExc_TypeError,
                   "get_headers() must return (name, value) pairs; item %zd is %.100s", i,
                   Py_TYPE(pair)->tp_name);
      goto fail;
    }
    if (PySequence_Size(pair) != 2) {
      PyErr_Format(PyExc_TypeError, "get_headers() item %zd is not a (name, value) pair", i);
      goto fail;
    }
    PyObject *k = PySequence_GetItem(pair, 0), *v = PySequence_GetItem(pair, 1);
    const char *ks = k ? zbpy_header_text(k) : NULL;
    const char *vs = (ks && v) ? zbpy_header_text(v) : NULL;
    if (ks && vs) {
      int32_t st = zerobus_headers_add(out, ks, vs);
      if (st != ZEROBUS_OK)
        PyErr_Format(PyExc_ValueError, "header %.100s refused: %s", ks, zerobus_status_str(st));
    }
    Py_XDECREF(k);
    Py_XDECREF(v);
    if (PyErr_Occurred()) goto fail;
  }
  goto done;
fail:
  rc = zbpy_headers_fail_from_exception(out);
done:
  Py_XDECREF(seq);
  Py_XDECREF(items);
  Py_XDECREF(result);
  PyGILState_Release(gil);
  return rc;
}

static void zbpy_user_data_free(void *user_data) {
  if (zbpy_shutting_down || !Py_IsInitialized()) return; /* leak rather than crash */
  PyGILState_STATE gil = PyGILState_Ensure();
  Py_XDECREF((PyObject *)user_data);
  PyGILState_Release(gil);
}

/* Never called: the binding reads events with zerobus_stream_poll_events(), which
 * runs no callback. Setting on_log makes the core queue LOG events for it (without
 * on_log the core writes log lines to stderr). */
static void zbpy_on_log_unused(void *user_data, int32_t level, const char *message) {
  (void)user_data;
  (void)level;
  (void)message;
}

/* Fills a callback table for `provider` (None = OAuth). Takes a reference that
 * the core gives back through user_data_free. */
static const zerobus_callbacks *zbpy_callbacks_for(zerobus_callbacks *cb, PyObject *provider) {
  zerobus_callbacks_init(cb, sizeof *cb);
  cb->on_log = zbpy_on_log_unused;
  if (provider == NULL || provider == Py_None) return cb;
  Py_INCREF(provider);
  cb->user_data = provider;
  cb->headers = zbpy_headers_cb;
  cb->user_data_free = zbpy_user_data_free;
  return cb;
}
%}

/* ---------------------------------------------------------------- typemaps */

%include "stdint.i"

/* zerobus_status results are not returned to Python: a failure becomes an
 * exception through the err out-parameter below. */
%typemap(out) zerobus_status "$result = SWIG_Py_Void(); (void)$1;";

/* zerobus_error **err: hidden; on failure raise the error (the function's status
 * when the core gave no error object). */
%typemap(in, numinputs=0) zerobus_error **err (zerobus_error *errtmp = NULL) {
  $1 = &errtmp;
}
%typemap(argout) zerobus_error **err {
  if (result != ZEROBUS_OK) {
    Py_XDECREF($result);
    $result = NULL;
    zbpy_raise(result, errtmp$argnum);
    errtmp$argnum = NULL;
    SWIG_fail;
  }
}
%typemap(freearg) zerobus_error **err {
  zerobus_error_destroy(errtmp$argnum);
}

/* Object out-parameters become the return value. */
%define ZBPY_OUT_HANDLE(TYPE)
%typemap(in, numinputs=0) TYPE **out (TYPE *outtmp = NULL) { $1 = &outtmp; }
%typemap(argout) TYPE **out {
  Py_XDECREF($result);
  $result = SWIG_NewPointerObj(SWIG_as_voidptr(outtmp$argnum), $*1_descriptor, 0);
}
%enddef
ZBPY_OUT_HANDLE(zerobus_options)
ZBPY_OUT_HANDLE(zerobus_sdk)

/* zerobus_options_get's `const char **value` becomes the returned str. */
%typemap(in, numinputs=0) const char **value (const char *valtmp = NULL) { $1 = ($1_ltype)&valtmp; }
%typemap(argout) const char **value {
  Py_XDECREF($result);
  $result = valtmp$argnum ? PyUnicode_FromString(valtmp$argnum) : SWIG_Py_Void();
}

/* Calls that can block (network, waits, joining threads) run without the GIL. */
%define ZBPY_NOGIL(NAME)
%exception NAME {
  Py_BEGIN_ALLOW_THREADS
  $action
  Py_END_ALLOW_THREADS
}
%enddef
ZBPY_NOGIL(zerobus_sdk_new)
ZBPY_NOGIL(zerobus_sdk_destroy)
ZBPY_NOGIL(zerobus_stream_wait_for_offset)
ZBPY_NOGIL(zerobus_stream_flush)
ZBPY_NOGIL(zerobus_stream_close)
ZBPY_NOGIL(zerobus_stream_destroy)

/* ------------------------------------------------ the ABI, wrapped directly */

%ignore zerobus_api;
%ignore zerobus_get_api;
%ignore zerobus_callbacks;
%ignore zerobus_callbacks_init;
%ignore zerobus_event;
%ignore zerobus_option_desc;
%ignore zerobus_stream_stats;
%ignore zerobus_option_info;
%ignore zerobus_stream_get_stats;
%ignore zerobus_stream_create;
%ignore zerobus_stream_recreate;
%ignore zerobus_stream_ingest;
%ignore zerobus_stream_ingest_batch;
%ignore zerobus_stream_ingest_nocopy;
%ignore zerobus_stream_get_unacked;
%ignore zerobus_stream_poll;
%ignore zerobus_stream_poll_events;
%ignore zerobus_stream_last_error;
%ignore zerobus_headers_add;
%ignore zerobus_headers_fail;
%ignore zerobus_records;
%ignore zerobus_records_count;
%ignore zerobus_records_get;
%ignore zerobus_records_batch_count;
%ignore zerobus_records_batch;
%ignore zerobus_records_destroy;
%ignore zerobus_error_code;
%ignore zerobus_error_message;
%ignore zerobus_error_retryable;
%ignore zerobus_error_grpc_status;
%ignore zerobus_error_http_status;
%ignore zerobus_error_clone;
%ignore zerobus_error_destroy;

%include "zerobus_abi.h"

/* ------------------------------------------------------- hand-written helpers */

/* The helpers are zbpy_* in C (no clash with libc, e.g. shutdown(2)) and keep
 * short names in Python. */
%rename(set_error_factory) zbpy_set_error_factory;
%rename(set_record_converter) zbpy_set_record_converter;
%rename(shutdown) zbpy_shutdown;
%rename(option_info) zbpy_option_info;
%rename(stream_create) zbpy_stream_create;
%rename(stream_recreate) zbpy_stream_recreate;
%rename(ingest) zbpy_ingest;
%rename(ingest_batch) zbpy_ingest_batch;
%rename(poll_events) zbpy_poll_events;
%rename(get_unacked) zbpy_get_unacked;
%rename(get_stats) zbpy_get_stats;
%rename(last_error) zbpy_last_error;
%rename(make_error) zbpy_make_error;

%inline %{
/* Registers the Python callables used by the helpers (see the file comment). */
PyObject *zbpy_set_error_factory(PyObject *factory) {
  Py_XINCREF(factory);
  Py_XSETREF(zbpy_error_factory, factory);
  Py_RETURN_NONE;
}
PyObject *zbpy_set_record_converter(PyObject *converter) {
  Py_XINCREF(converter);
  Py_XSETREF(zbpy_record_converter, converter);
  Py_RETURN_NONE;
}
/* Called at interpreter exit: core threads stop calling into Python. */
PyObject *zbpy_shutdown(void) {
  zbpy_shutting_down = 1;
  Py_RETURN_NONE;
}

/* (name, type, default, scope, doc) of option `index`. */
PyObject *zbpy_option_info(size_t index) {
  zerobus_option_desc d;
  memset(&d, 0, sizeof d);
  d.struct_size = sizeof d;
  zerobus_status st = zerobus_option_info(index, &d);
  if (st != ZEROBUS_OK) return zbpy_raise(st, NULL);
  return Py_BuildValue("(zzzzz)", d.name, d.type, d.default_value, d.scope, d.doc);
}

/* Opens a stream. `descriptor` is bytes or None; `headers_provider` an object with
 * get_headers() or None (OAuth with client_id/client_secret). Blocks without the
 * GIL. */
PyObject *zbpy_stream_create(zerobus_sdk *sdk, const char *table_name, PyObject *descriptor,
                        const char *client_id, const char *client_secret,
                        zerobus_options *opts, PyObject *headers_provider) {
  const void *desc = NULL;
  size_t desc_len = 0;
  if (descriptor && descriptor != Py_None) {
    if (!PyBytes_Check(descriptor)) {
      PyErr_SetString(PyExc_TypeError, "descriptor must be bytes or None");
      return NULL;
    }
    desc = PyBytes_AS_STRING(descriptor);
    desc_len = (size_t)PyBytes_GET_SIZE(descriptor);
  }
  zerobus_callbacks cb;
  const zerobus_callbacks *cbp = zbpy_callbacks_for(&cb, headers_provider);
  zerobus_stream *out = NULL;
  zerobus_error *err = NULL;
  zerobus_status st;
  Py_BEGIN_ALLOW_THREADS
  st = zerobus_stream_create(sdk, table_name, desc, desc_len, client_id, client_secret, opts,
                             cbp, &out, &err);
  Py_END_ALLOW_THREADS
  if (st != ZEROBUS_OK) return zbpy_raise(st, err);
  return SWIG_NewPointerObj(SWIG_as_voidptr(out), SWIGTYPE_p_zerobus_stream, 0);
}

/* zerobus_stream_recreate with a new callback table for the new stream. */
PyObject *zbpy_stream_recreate(zerobus_stream *old, PyObject *headers_provider) {
  zerobus_callbacks cb;
  const zerobus_callbacks *cbp = zbpy_callbacks_for(&cb, headers_provider);
  zerobus_stream *out = NULL;
  zerobus_error *err = NULL;
  zerobus_status st;
  Py_BEGIN_ALLOW_THREADS
  st = zerobus_stream_recreate(old, cbp, &out, &err);
  Py_END_ALLOW_THREADS
  if (st != ZEROBUS_OK) {
    /* recreate (unlike create) does not promise to call user_data_free on every
     * failure path before it starts a stream; the core frees it when it took
     * it. Nothing to do here. */
    return zbpy_raise(st, err);
  }
  return SWIG_NewPointerObj(SWIG_as_voidptr(out), SWIGTYPE_p_zerobus_stream, 0);
}

/* Queues one record; returns its logical offset. `json` selects which Python
 * types are accepted without conversion (str only for JSON streams). With
 * `nonblock` false a full queue is waited for without the GIL. */
PyObject *zbpy_ingest(zerobus_stream *s, PyObject *record, int json, int nonblock) {
  const char *data;
  size_t len;
  PyObject *keep;
  if (zbpy_record_buffer(record, json, &data, &len, &keep) < 0) return NULL;
  int64_t offset = -1;
  zerobus_error *err = NULL;
  zerobus_status st = zerobus_stream_ingest(s, data, len, ZEROBUS_INGEST_NONBLOCK, &offset,
                                            &err);
  if (st == ZEROBUS_ERR_QUEUE_FULL && !nonblock) {
    zerobus_error_destroy(err);
    err = NULL;
    /* `record`/`keep` are immutable objects we hold a reference to: safe to read
     * without the GIL. */
    Py_INCREF(record);
    Py_BEGIN_ALLOW_THREADS
    st = zerobus_stream_ingest(s, data, len, 0, &offset, &err);
    Py_END_ALLOW_THREADS
    Py_DECREF(record);
  }
  Py_XDECREF(keep);
  if (st != ZEROBUS_OK) return zbpy_raise(st, err);
  return PyLong_FromLongLong(offset);
}

/* Queues a list/tuple of records as one ingest call (one logical offset).
 * Returns the offset, or None for an empty sequence. */
PyObject *zbpy_ingest_batch(zerobus_stream *s, PyObject *records, int json, int nonblock) {
  if (PyDict_Check(records) || PyUnicode_Check(records) || PyBytes_Check(records) ||
      PyByteArray_Check(records)) {
    /* iterable, but surely one record passed where a list of them was meant */
    PyErr_Format(PyExc_TypeError, "records must be a list of records, not %.100s",
                 Py_TYPE(records)->tp_name);
    return NULL;
  }
  PyObject *seq = PySequence_Fast(records, "records must be a list or a tuple");
  if (!seq) return NULL;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  if (n == 0) {
    Py_DECREF(seq);
    Py_RETURN_NONE;
  }
  PyObject *result = NULL;
  enum { STACK = 256 };
  const void *data_stack[STACK];
  size_t lens_stack[STACK];
  const void **data = data_stack;
  size_t *lens = lens_stack;
  PyObject **keep = NULL; /* converted objects, allocated on first need */
  PyObject **items = PySequence_Fast_ITEMS(seq);
  if (n > STACK) {
    data = PyMem_Malloc(sizeof(void *) * (size_t)n);
    lens = PyMem_Malloc(sizeof(size_t) * (size_t)n);
    if (!data || !lens) {
      PyErr_NoMemory();
      goto out;
    }
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *item = items[i];
    if (PyBytes_CheckExact(item)) { /* the common case, inline */
      data[i] = PyBytes_AS_STRING(item);
      lens[i] = (size_t)PyBytes_GET_SIZE(item);
      continue;
    }
    const char *d;
    size_t l;
    PyObject *k;
    if (zbpy_record_buffer(item, json, &d, &l, &k) < 0) {
      if (PyErr_ExceptionMatches(PyExc_TypeError)) {
        /* Name the position of the bad record. */
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        PyObject *msg = v ? PyObject_Str(v) : NULL;
        PyErr_Format(PyExc_TypeError, "record %zd: %U", i, msg ? msg : Py_None);
        Py_XDECREF(msg);
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
      }
      goto out;
    }
    data[i] = d;
    lens[i] = l;
    if (k) {
      if (!keep) {
        keep = PyMem_Calloc((size_t)n, sizeof(PyObject *));
        if (!keep) {
          Py_DECREF(k);
          PyErr_NoMemory();
          goto out;
        }
      }
      keep[i] = k;
    }
  }
  {
    int64_t offset = -1;
    zerobus_error *err = NULL;
    zerobus_status st = zerobus_stream_ingest_batch(s, (const void *const *)data, lens,
                                                    (size_t)n, ZEROBUS_INGEST_NONBLOCK,
                                                    &offset, &err);
    if (st == ZEROBUS_ERR_QUEUE_FULL && !nonblock) {
      zerobus_error_destroy(err);
      err = NULL;
      /* Without the GIL another thread could change the list (even reallocate
       * its item array) and drop the last reference to a record: hold our own
       * reference on each, in our own array, for the wait. */
      PyObject **held = PyMem_Malloc(sizeof(PyObject *) * (size_t)n);
      if (!held) {
        PyErr_NoMemory();
        goto out;
      }
      for (Py_ssize_t i = 0; i < n; i++) {
        held[i] = items[i];
        Py_INCREF(held[i]);
      }
      Py_BEGIN_ALLOW_THREADS
      st = zerobus_stream_ingest_batch(s, (const void *const *)data, lens, (size_t)n, 0,
                                       &offset, &err);
      Py_END_ALLOW_THREADS
      for (Py_ssize_t i = 0; i < n; i++) Py_DECREF(held[i]);
      PyMem_Free(held);
    }
    if (st != ZEROBUS_OK)
      zbpy_raise(st, err);
    else
      result = PyLong_FromLongLong(offset);
  }
out:
  if (keep) {
    for (Py_ssize_t i = 0; i < n; i++) Py_XDECREF(keep[i]);
    PyMem_Free(keep);
  }
  if (data != data_stack) PyMem_Free((void *)data);
  if (lens != lens_stack) PyMem_Free(lens);
  Py_DECREF(seq);
  return result;
}

/* Moves up to `cap` (<= 256) pending events out of the core, waiting up to
 * timeout_ms (<0 forever) without the GIL. Returns a list of tuples
 *   (kind, status, first, last, message, retryable, grpc_status, http_status)
 * (message None for acks). */
PyObject *zbpy_poll_events(zerobus_stream *s, int cap, int timeout_ms) {
  zerobus_event ev[256]; /* 10 KB of stack: fine on small thread stacks too */
  if (cap < 1 || cap > 256) cap = 256;
  size_t n = 0;
  zerobus_error *err = NULL;
  zerobus_status st;
  if (timeout_ms == 0) {
    st = zerobus_stream_poll_events(s, ev, (size_t)cap, sizeof ev[0], 0, &n, &err);
  } else {
    Py_BEGIN_ALLOW_THREADS
    st = zerobus_stream_poll_events(s, ev, (size_t)cap, sizeof ev[0], timeout_ms, &n, &err);
    Py_END_ALLOW_THREADS
  }
  if (st != ZEROBUS_OK) return zbpy_raise(st, err);
  PyObject *list = PyList_New((Py_ssize_t)n);
  if (!list) return NULL;
  for (size_t i = 0; i < n; i++) {
    const zerobus_event *e = &ev[i];
    PyObject *t = Py_BuildValue(
        "(iiLLziii)", (int)e->kind, (int)e->status, (long long)e->first, (long long)e->last,
        e->message, e->error ? (int)zerobus_error_retryable(e->error) : 0,
        e->error ? (int)zerobus_error_grpc_status(e->error) : -1,
        e->error ? (int)zerobus_error_http_status(e->error) : -1);
    if (!t) {
      Py_DECREF(list);
      return NULL;
    }
    PyList_SET_ITEM(list, (Py_ssize_t)i, t);
  }
  return list;
}

/* (flat list of bytes, list of lists of bytes) of the records never acked. */
PyObject *zbpy_get_unacked(zerobus_stream *s) {
  zerobus_records *r = NULL;
  zerobus_error *err = NULL;
  zerobus_status st = zerobus_stream_get_unacked(s, &r, &err);
  if (st != ZEROBUS_OK) return zbpy_raise(st, err);
  size_t count = zerobus_records_count(r), batches = zerobus_records_batch_count(r);
  PyObject *flat = PyList_New((Py_ssize_t)count);
  PyObject *grouped = PyList_New((Py_ssize_t)batches);
  PyObject *result = NULL;
  if (!flat || !grouped) goto out;
  for (size_t i = 0; i < count; i++) {
    const void *d = NULL;
    size_t l = 0;
    if (zerobus_records_get(r, i, &d, &l) != ZEROBUS_OK) {
      zbpy_raise(ZEROBUS_ERR_INTERNAL, NULL);
      goto out;
    }
    PyObject *b = PyBytes_FromStringAndSize((const char *)d, (Py_ssize_t)l);
    if (!b) goto out;
    PyList_SET_ITEM(flat, (Py_ssize_t)i, b);
  }
  for (size_t b = 0; b < batches; b++) {
    size_t first = 0, cnt = 0;
    if (zerobus_records_batch(r, b, &first, &cnt, NULL) != ZEROBUS_OK || first + cnt > count) {
      zbpy_raise(ZEROBUS_ERR_INTERNAL, NULL);
      goto out;
    }
    PyObject *sub = PyList_GetSlice(flat, (Py_ssize_t)first, (Py_ssize_t)(first + cnt));
    if (!sub) goto out;
    PyList_SET_ITEM(grouped, (Py_ssize_t)b, sub);
  }
  result = Py_BuildValue("(OO)", flat, grouped);
out:
  Py_XDECREF(flat);
  Py_XDECREF(grouped);
  zerobus_records_destroy(r);
  return result;
}

/* The stream's counters as a tuple in zerobus_stream_stats order (after
 * struct_size). */
PyObject *zbpy_get_stats(zerobus_stream *s) {
  zerobus_stream_stats st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  zerobus_status rc = zerobus_stream_get_stats(s, &st);
  if (rc != ZEROBUS_OK) return zbpy_raise(rc, NULL);
  return Py_BuildValue("(iLLLLLLLLLLLLLLLL)", (int)st.state, (long long)st.records_queued,
                       (long long)st.bytes_queued, (long long)st.records_sent,
                       (long long)st.bytes_sent, (long long)st.records_acked,
                       (long long)st.bytes_acked, (long long)st.records_resent,
                       (long long)st.requests_sent, (long long)st.acks_received,
                       (long long)st.reconnects, (long long)st.recovery_attempts,
                       (long long)st.inflight_records, (long long)st.inflight_bytes,
                       (long long)st.last_offset, (long long)st.acked_offset,
                       (long long)st.records_failed);
}

/* The stream's last error as an exception object (not raised), or None. */
PyObject *zbpy_last_error(zerobus_stream *s) {
  zerobus_error *e = NULL;
  if (zerobus_stream_last_error(s, &e) != ZEROBUS_OK || e == NULL) Py_RETURN_NONE;
  if (!zbpy_error_factory) {
    zerobus_error_destroy(e);
    Py_RETURN_NONE;
  }
  PyObject *exc = PyObject_CallFunction(
      zbpy_error_factory, "isziii", (int)zerobus_error_code(e),
      zerobus_status_name(zerobus_error_code(e)), zerobus_error_message(e),
      (int)zerobus_error_retryable(e), (int)zerobus_error_grpc_status(e),
      (int)zerobus_error_http_status(e));
  zerobus_error_destroy(e);
  return exc;
}

/* Builds (does not raise) the exception for a status, for Python-side timeouts. */
PyObject *zbpy_make_error(int code, const char *message, int retryable) {
  if (!zbpy_error_factory) Py_RETURN_NONE;
  return PyObject_CallFunction(zbpy_error_factory, "isziii", code, zerobus_status_name(code),
                               message, retryable, -1, -1);
}
%}
