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
 *  - callbacks: the stream runs with dispatch_thread=true; the library's
 *    dispatcher thread calls on_ack/on_error, which attach that thread to the JVM
 *    on first use (AttachCurrentThreadAsDaemon) and detach it when the thread
 *    ends (pthread key destructor), then call the Java listener. The listener is
 *    a global ref owned by the callback table's user_data and released in
 *    user_data_free, which the library calls exactly once.
 */
#include <jni.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "zerobus_abi.h"

static JavaVM *g_vm;
static pthread_key_t g_detach_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;

static void detach_thread(void *vm) { (*(JavaVM *)vm)->DetachCurrentThread((JavaVM *)vm); }
static void make_key(void) { pthread_key_create(&g_detach_key, detach_thread); }

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM *vm, void *reserved) {
  (void)reserved;
  g_vm = vm;
  pthread_once(&g_key_once, make_key);
  return JNI_VERSION_1_8;
}

/* The JNIEnv of the current thread, attaching a library thread on first use. */
static JNIEnv *callback_env(void) {
  JNIEnv *env = NULL;
  jint rc = (*g_vm)->GetEnv(g_vm, (void **)&env, JNI_VERSION_1_8);
  if (rc == JNI_OK) return env;
  if (rc != JNI_EDETACHED) return NULL;
  JavaVMAttachArgs args = {JNI_VERSION_1_8, "zerobus-dispatch", NULL};
  if ((*g_vm)->AttachCurrentThreadAsDaemon(g_vm, (void **)&env, &args) != JNI_OK) return NULL;
  pthread_setspecific(g_detach_key, g_vm); /* detach when the library's thread exits */
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
  jmethodID on_ack, on_error, on_released;
} listener_ref;

static void report_callback_exception(JNIEnv *env) {
  /* A Java exception cannot unwind through the library: print it and go on; the
   * listener records its own failures. */
  if ((*env)->ExceptionCheck(env)) {
    (*env)->ExceptionDescribe(env);
    (*env)->ExceptionClear(env);
  }
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
  JNIEnv *env = callback_env();
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
                                                      jstring client_secret,
                                                      jobjectArray options, jobject listener) {
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
  if (!l->on_ack || !l->on_error || !l->on_released) {
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
  cb.user_data_free = user_data_free; /* also called when create fails */

  const char *t = (*env)->GetStringUTFChars(env, table, NULL);
  const char *id = (*env)->GetStringUTFChars(env, client_id, NULL);
  const char *sec = (*env)->GetStringUTFChars(env, client_secret, NULL);
  zerobus_stream *s = NULL;
  zerobus_status st = zerobus_stream_create((zerobus_sdk *)(intptr_t)sdk, t, NULL, 0, id, sec,
                                            opts, &cb, &s, &err);
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
