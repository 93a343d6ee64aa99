/*
 * zerobus_jni.c - the JNI glue of the Java proof consumer (AbiConsumer.java).
 *
 * Shape of the mapping:
 *  - handles are jlong (the library's opaque pointers); Java owns them and frees
 *    them with destroy(), exactly once;
 *  - a failed call throws AbiConsumer.ZerobusException(code, name, message,
 *    retryable) built from the zerobus_error, which is freed here;
 *  - payloads: the library copies them during the call, so a byte[] is borrowed
 *    with GetByteArrayElements(JNI_ABORT) only for the call (no pinning across a
 *    blocking ingest, no copy kept alive);
 *  - callbacks: the stream runs with dispatch_thread=true. The library calls
 *    on_thread_start on its dispatcher thread before any other callback there:
 *    the glue attaches the thread to the JVM (AttachCurrentThreadAsDaemon, named
 *    after the library's thread name). on_ack/on_error then just GetEnv and call
 *    the Java listener. on_thread_stop, the thread's last callback, detaches it
 *    (DetachCurrentThread). No thread-local destructors, no attach-on-first-use.
 *    The listener is a global ref owned by the callback table's user_data and
 *    released in user_data_free, which the library calls exactly once, after
 *    on_thread_stop, on the thread that destroys the stream (or fails create).
 */
#include <jni.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zerobus_abi.h"

static JavaVM *g_vm;

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM *vm, void *reserved) {
  (void)reserved;
  g_vm = vm;
  return JNI_VERSION_1_8;
}

/* The JNIEnv of the current thread: the caller's Java thread, or a library thread
 * attached in on_thread_start. NULL if neither (a library bug: it would have
 * run a callback outside on_thread_start/on_thread_stop). */
static JNIEnv *callback_env(void) {
  JNIEnv *env = NULL;
  if ((*g_vm)->GetEnv(g_vm, (void **)&env, JNI_VERSION_1_8) != JNI_OK) {
    fprintf(stderr, "zerobus_jni: callback on a thread not attached to the JVM\n");
    return NULL;
  }
  return env;
}

static void throw_status(JNIEnv *env, zerobus_status st, zerobus_error *err) {
  jclass cls = (*env)->FindClass(env, "AbiConsumer$ZerobusException");
  if (!cls) return;
  jmethodID ctor =
      (*env)->GetMethodID(env, cls, "<init>", "(ILjava/lang/String;Ljava/lang/String;Z)V");
  int32_t code = err ? zerobus_error_code(err) : (int32_t)st;
  jstring name = (*env)->NewStringUTF(env, zerobus_status_name(code));
  jstring msg = (*env)->NewStringUTF(env, err ? zerobus_error_message(err) : "");
  jobject ex = (*env)->NewObject(env, cls, ctor, (jint)code, name, msg,
                                 (jboolean)(zerobus_error_retryable(err) != 0));
  zerobus_error_destroy(err);
  if (ex) (*env)->Throw(env, (jthrowable)ex);
}

/* returns 1 (and throws) on failure */
static int failed(JNIEnv *env, zerobus_status st, zerobus_error *err) {
  if (st == ZEROBUS_OK && err == NULL) return 0;
  throw_status(env, st, err);
  return 1;
}

typedef struct listener_ref {
  jobject listener; /* global ref */
  jmethodID on_ack, on_error, on_released, on_thread_start, on_thread_stop;
} listener_ref;

static void report_callback_exception(JNIEnv *env) {
  /* A Java exception cannot unwind through the library: print it and go on; the
   * listener records its own failures. */
  if ((*env)->ExceptionCheck(env)) {
    (*env)->ExceptionDescribe(env);
    (*env)->ExceptionClear(env);
  }
}

/* A library thread that will run callbacks starts: attach it to the JVM. */
static void on_thread_start(void *ud, const char *thread_name) {
  listener_ref *l = ud;
  JNIEnv *env = NULL;
  JavaVMAttachArgs args = {JNI_VERSION_1_8, (char *)thread_name, NULL};
  if ((*g_vm)->AttachCurrentThreadAsDaemon(g_vm, (void **)&env, &args) != JNI_OK) {
    fprintf(stderr, "zerobus_jni: cannot attach %s to the JVM\n", thread_name);
    return;
  }
  jstring name = (*env)->NewStringUTF(env, thread_name);
  (*env)->CallVoidMethod(env, l->listener, l->on_thread_start, name);
  report_callback_exception(env);
  (*env)->DeleteLocalRef(env, name);
}

/* Its last callback: detach it before the library lets it exit. */
static void on_thread_stop(void *ud) {
  listener_ref *l = ud;
  JNIEnv *env = callback_env();
  if (!env) return;
  (*env)->CallVoidMethod(env, l->listener, l->on_thread_stop);
  report_callback_exception(env);
  (*g_vm)->DetachCurrentThread(g_vm);
}

static void on_ack(void *ud, int64_t offset) {
  listener_ref *l = ud;
  JNIEnv *env = callback_env();
  if (!env) return;
  (*env)->CallVoidMethod(env, l->listener, l->on_ack, (jlong)offset);
  report_callback_exception(env);
}

static void on_error(void *ud, int64_t offset, const zerobus_error *err) {
  listener_ref *l = ud;
  JNIEnv *env = callback_env();
  if (!env) return;
  jstring msg = (*env)->NewStringUTF(env, zerobus_error_message(err));
  (*env)->CallVoidMethod(env, l->listener, l->on_error, (jlong)offset,
                         (jint)zerobus_error_code(err), msg);
  report_callback_exception(env);
  (*env)->DeleteLocalRef(env, msg);
}

static void user_data_free(void *ud) {
  listener_ref *l = ud;
  JNIEnv *env = callback_env(); /* the Java thread calling destroy/create */
  if (env) {
    (*env)->CallVoidMethod(env, l->listener, l->on_released);
    report_callback_exception(env);
    (*env)->DeleteGlobalRef(env, l->listener);
  }
  free(l);
}

JNIEXPORT jlong JNICALL Java_AbiConsumer_sdkNew(JNIEnv *env, jclass cls, jstring endpoint,
                                                jstring workspace) {
  (void)cls;
  const char *ep = (*env)->GetStringUTFChars(env, endpoint, NULL);
  const char *ws = (*env)->GetStringUTFChars(env, workspace, NULL);
  zerobus_sdk *sdk = NULL;
  zerobus_error *err = NULL;
  zerobus_status st = zerobus_sdk_new(ep, ws, NULL, &sdk, &err);
  (*env)->ReleaseStringUTFChars(env, endpoint, ep);
  (*env)->ReleaseStringUTFChars(env, workspace, ws);
  if (failed(env, st, err)) return 0;
  return (jlong)(intptr_t)sdk;
}

JNIEXPORT void JNICALL Java_AbiConsumer_sdkDestroy(JNIEnv *env, jclass cls, jlong sdk) {
  (void)env, (void)cls;
  zerobus_sdk_destroy((zerobus_sdk *)(intptr_t)sdk);
}

/* options: alternating key, value strings */
JNIEXPORT jlong JNICALL Java_AbiConsumer_streamCreate(JNIEnv *env, jclass cls, jlong sdk,
                                                      jstring table, jstring client_id,
                                                      jstring client_secret, jobjectArray options,
                                                      jobject listener) {
  (void)cls;
  zerobus_options *opts = NULL;
  zerobus_error *err = NULL;
  if (failed(env, zerobus_options_new(&opts), NULL)) return 0;
  jsize n = options ? (*env)->GetArrayLength(env, options) : 0;
  for (jsize i = 0; i + 1 < n; i += 2) {
    jstring k = (*env)->GetObjectArrayElement(env, options, i);
    jstring v = (*env)->GetObjectArrayElement(env, options, i + 1);
    const char *ks = (*env)->GetStringUTFChars(env, k, NULL);
    const char *vs = (*env)->GetStringUTFChars(env, v, NULL);
    zerobus_status st = zerobus_options_set(opts, ks, vs, &err);
    (*env)->ReleaseStringUTFChars(env, k, ks);
    (*env)->ReleaseStringUTFChars(env, v, vs);
    if (failed(env, st, err)) {
      zerobus_options_destroy(opts);
      return 0;
    }
  }
  listener_ref *l = calloc(1, sizeof *l);
  jclass lcls = (*env)->GetObjectClass(env, listener);
  l->on_ack = (*env)->GetMethodID(env, lcls, "onAck", "(J)V");
  l->on_error = (*env)->GetMethodID(env, lcls, "onError", "(JILjava/lang/String;)V");
  l->on_released = (*env)->GetMethodID(env, lcls, "onReleased", "()V");
  l->on_thread_start = (*env)->GetMethodID(env, lcls, "onThreadStart", "(Ljava/lang/String;)V");
  l->on_thread_stop = (*env)->GetMethodID(env, lcls, "onThreadStop", "()V");
  if (!l->on_ack || !l->on_error || !l->on_released || !l->on_thread_start || !l->on_thread_stop) {
    free(l);
    zerobus_options_destroy(opts);
    return 0; /* NoSuchMethodError pending */
  }
  l->listener = (*env)->NewGlobalRef(env, listener);
  zerobus_callbacks cb;
  zerobus_callbacks_init(&cb, sizeof cb);
  cb.user_data = l;
  cb.on_ack = on_ack;
  cb.on_error = on_error;
  cb.on_thread_start = on_thread_start; /* JNI attach of the dispatcher thread */
  cb.on_thread_stop = on_thread_stop;   /* and its detach */
  cb.user_data_free = user_data_free;   /* also called when create fails */

  const char *t = (*env)->GetStringUTFChars(env, table, NULL);
  const char *id = (*env)->GetStringUTFChars(env, client_id, NULL);
  const char *sec = (*env)->GetStringUTFChars(env, client_secret, NULL);
  zerobus_stream *s = NULL;
  zerobus_status st =
      zerobus_stream_create((zerobus_sdk *)(intptr_t)sdk, t, NULL, 0, id, sec, opts, &cb, &s, &err);
  (*env)->ReleaseStringUTFChars(env, table, t);
  (*env)->ReleaseStringUTFChars(env, client_id, id);
  (*env)->ReleaseStringUTFChars(env, client_secret, sec);
  zerobus_options_destroy(opts);
  if (failed(env, st, err)) return 0;
  return (jlong)(intptr_t)s;
}

JNIEXPORT jlong JNICALL Java_AbiConsumer_ingest(JNIEnv *env, jclass cls, jlong stream,
                                                jbyteArray data) {
  (void)cls;
  jsize len = (*env)->GetArrayLength(env, data);
  jbyte *bytes = (*env)->GetByteArrayElements(env, data, NULL);
  int64_t off = -1;
  zerobus_error *err = NULL;
  zerobus_status st =
      zerobus_stream_ingest((zerobus_stream *)(intptr_t)stream, bytes, (size_t)len, 0, &off, &err);
  (*env)->ReleaseByteArrayElements(env, data, bytes, JNI_ABORT); /* copied by the library */
  if (failed(env, st, err)) return -1;
  return (jlong)off;
}

JNIEXPORT void JNICALL Java_AbiConsumer_flush(JNIEnv *env, jclass cls, jlong stream) {
  (void)cls;
  zerobus_error *err = NULL;
  zerobus_status st = zerobus_stream_flush((zerobus_stream *)(intptr_t)stream, &err);
  failed(env, st, err);
}

JNIEXPORT void JNICALL Java_AbiConsumer_close(JNIEnv *env, jclass cls, jlong stream) {
  (void)cls;
  zerobus_error *err = NULL;
  zerobus_status st = zerobus_stream_close((zerobus_stream *)(intptr_t)stream, &err);
  failed(env, st, err);
}

JNIEXPORT void JNICALL Java_AbiConsumer_destroy(JNIEnv *env, jclass cls, jlong stream) {
  (void)env, (void)cls;
  zerobus_stream_destroy((zerobus_stream *)(intptr_t)stream);
}

/* {state, records_acked, acked_offset, inflight_records} */
JNIEXPORT jlongArray JNICALL Java_AbiConsumer_stats(JNIEnv *env, jclass cls, jlong stream) {
  (void)cls;
  zerobus_stream_stats s;
  memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  if (failed(env, zerobus_stream_get_stats((zerobus_stream *)(intptr_t)stream, &s), NULL))
    return NULL;
  jlong v[4] = {s.state, s.records_acked, s.acked_offset, s.inflight_records};
  jlongArray out = (*env)->NewLongArray(env, 4);
  if (out) (*env)->SetLongArrayRegion(env, out, 0, 4, v);
  return out;
}
