;; The bench's hello handler written directly against the canonical ABI of
;; Pier's world: no language runtime inside, so a request costs what the host
;; costs. `GET /hello` (every path) answers `Hello, world!` as text/plain.
(module
  (import "wasi:http/types@0.2.12" "[static]fields.from-list"
    (func $fields_from_list (param i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[constructor]outgoing-response"
    (func $outgoing_response (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-response.set-status-code"
    (func $set_status_code (param i32 i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-response.body"
    (func $response_body (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]response-outparam.set"
    (func $outparam_set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-body.write"
    (func $body_write (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]outgoing-body.finish"
    (func $body_finish (param i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[resource-drop]incoming-request"
    (func $drop_request (param i32)))
  (import "wasi:io/streams@0.2.12" "[method]output-stream.blocking-write-and-flush"
    (func $write_and_flush (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[resource-drop]output-stream"
    (func $drop_stream (param i32)))

  (memory (export "memory") 1)
  ;; 0..15: return area. 16..31: the one header, as list<tuple<string, list<u8>>>.
  (data (i32.const 16) "\40\00\00\00\0c\00\00\00\50\00\00\00\0a\00\00\00")
  (data (i32.const 64) "content-type")
  (data (i32.const 80) "text/plain")
  (data (i32.const 96) "Hello, world!\0a")
  ;; get-manifest's result: ok, then the JSON's pointer and length.
  (data (i32.const 128) "\00\00\00\00\a0\00\00\00\34\00\00\00")
  (data (i32.const 160) "{\"http_handlers\":[{\"method\":\"get\",\"path\":\"/hello\"}]}")
  (global $heap (mut i32) (i32.const 1024))

  (func $ok_handle (result i32)
    (if (i32.load8_u (i32.const 0)) (then unreachable))
    (i32.load (i32.const 4)))

  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $request i32) (param $out i32)
    (local $response i32) (local $body i32) (local $stream i32)
    (call $drop_request (local.get $request))
    (call $fields_from_list (i32.const 16) (i32.const 1) (i32.const 0))
    (local.set $response (call $outgoing_response (call $ok_handle)))
    (drop (call $set_status_code (local.get $response) (i32.const 200)))
    (call $response_body (local.get $response) (i32.const 0))
    (local.set $body (call $ok_handle))
    (call $outparam_set (local.get $out) (i32.const 0) (local.get $response)
      (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $body_write (local.get $body) (i32.const 0))
    (local.set $stream (call $ok_handle))
    (call $write_and_flush (local.get $stream) (i32.const 96) (i32.const 14) (i32.const 0))
    (if (i32.load8_u (i32.const 0)) (then unreachable))
    (call $drop_stream (local.get $stream))
    (call $body_finish (local.get $body) (i32.const 0) (i32.const 0) (i32.const 0))
    (if (i32.load8_u (i32.const 0)) (then unreachable)))

  (func (export "trailbase:component/init-endpoint@0.2.0#get-manifest")
    (param i32 i32) (result i32)
    (i32.const 128))

  (func (export "trailbase:component/sqlite-function-endpoint@0.2.0#dispatch-scalar-function")
    (param i32 i32 i32 i32) (result i32)
    unreachable)

  ;; A bump allocator: the host only allocates get-manifest's argument, once per instance.
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $at i32)
    (local.set $at (i32.and
      (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
      (i32.xor (i32.sub (local.get 2) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $at) (local.get 3)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then unreachable))
    (local.get $at)))
