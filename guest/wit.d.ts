/**
 * Types of the WIT interfaces the guest SDK imports, as componentize-js binds
 * them (`s64`/`u64` are `bigint`, `list<u8>` is `Uint8Array`, `option<T>` is
 * `T | undefined`, a `result` error is thrown as a `ComponentError` whose
 * `payload` is the error variant).
 *
 * Generated from `wit/` with jco's guest type generator
 * (`generateTypes("guest", { wit: { tag: "path", val: "wit" },
 * world: "trailbase:component/interfaces", guest: true })` from
 * `@bytecodealliance/jco-transpile/component`), keeping only the interfaces the
 * SDK uses. Regenerate it when `wit/` changes.
 */
declare module "wasi:io/error@0.2.12" {
  export class Error implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    toDebugString(): string;
    [Symbol.dispose](): void;
  }
}
declare module "wasi:io/poll@0.2.12" {
  export function poll(in_: Array<Pollable>): Uint32Array;

  export class Pollable implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    ready(): boolean;
    block(): void;
    [Symbol.dispose](): void;
  }
}
declare module "wasi:io/streams@0.2.12" {
  export type Error = import("wasi:io/error@0.2.12").Error;
  export type Pollable = import("wasi:io/poll@0.2.12").Pollable;
  export type StreamError = StreamErrorLastOperationFailed | StreamErrorClosed;
  export interface StreamErrorLastOperationFailed {
    tag: "last-operation-failed";
    val: Error;
  }
  export interface StreamErrorClosed {
    tag: "closed";
  }

  export class InputStream implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    read(len: bigint): Uint8Array;
    blockingRead(len: bigint): Uint8Array;
    skip(len: bigint): bigint;
    blockingSkip(len: bigint): bigint;
    subscribe(): Pollable;
    [Symbol.dispose](): void;
  }

  export class OutputStream implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    checkWrite(): bigint;
    write(contents: Uint8Array): void;
    blockingWriteAndFlush(contents: Uint8Array): void;
    flush(): void;
    blockingFlush(): void;
    subscribe(): Pollable;
    writeZeroes(len: bigint): void;
    blockingWriteZeroesAndFlush(len: bigint): void;
    splice(src: InputStream, len: bigint): bigint;
    blockingSplice(src: InputStream, len: bigint): bigint;
    [Symbol.dispose](): void;
  }
}
declare module "wasi:clocks/wall-clock@0.2.12" {
  export function now(): Datetime;
  export function resolution(): Datetime;
  export interface Datetime {
    seconds: bigint;
    nanoseconds: number;
  }
}
declare module "wasi:http/types@0.2.12" {
  export function httpErrorCode(err: IoError): ErrorCode | undefined;
  export type Duration = import("wasi:clocks/monotonic-clock@0.2.12").Duration;
  export type InputStream = import("wasi:io/streams@0.2.12").InputStream;
  export type OutputStream = import("wasi:io/streams@0.2.12").OutputStream;
  export type IoError = import("wasi:io/error@0.2.12").Error;
  export type Pollable = import("wasi:io/poll@0.2.12").Pollable;
  export type Method =
    | MethodGet
    | MethodHead
    | MethodPost
    | MethodPut
    | MethodDelete
    | MethodConnect
    | MethodOptions
    | MethodTrace
    | MethodPatch
    | MethodOther;
  export interface MethodGet {
    tag: "get";
  }
  export interface MethodHead {
    tag: "head";
  }
  export interface MethodPost {
    tag: "post";
  }
  export interface MethodPut {
    tag: "put";
  }
  export interface MethodDelete {
    tag: "delete";
  }
  export interface MethodConnect {
    tag: "connect";
  }
  export interface MethodOptions {
    tag: "options";
  }
  export interface MethodTrace {
    tag: "trace";
  }
  export interface MethodPatch {
    tag: "patch";
  }
  export interface MethodOther {
    tag: "other";
    val: string;
  }
  export type Scheme = SchemeHttp | SchemeHttps | SchemeOther;
  export interface SchemeHttp {
    tag: "HTTP";
  }
  export interface SchemeHttps {
    tag: "HTTPS";
  }
  export interface SchemeOther {
    tag: "other";
    val: string;
  }
  export interface DnsErrorPayload {
    rcode?: string;
    infoCode?: number;
  }
  export interface TlsAlertReceivedPayload {
    alertId?: number;
    alertMessage?: string;
  }
  export interface FieldSizePayload {
    fieldName?: string;
    fieldSize?: number;
  }
  export type ErrorCode =
    | ErrorCodeDnsTimeout
    | ErrorCodeDnsError
    | ErrorCodeDestinationNotFound
    | ErrorCodeDestinationUnavailable
    | ErrorCodeDestinationIpProhibited
    | ErrorCodeDestinationIpUnroutable
    | ErrorCodeConnectionRefused
    | ErrorCodeConnectionTerminated
    | ErrorCodeConnectionTimeout
    | ErrorCodeConnectionReadTimeout
    | ErrorCodeConnectionWriteTimeout
    | ErrorCodeConnectionLimitReached
    | ErrorCodeTlsProtocolError
    | ErrorCodeTlsCertificateError
    | ErrorCodeTlsAlertReceived
    | ErrorCodeHttpRequestDenied
    | ErrorCodeHttpRequestLengthRequired
    | ErrorCodeHttpRequestBodySize
    | ErrorCodeHttpRequestMethodInvalid
    | ErrorCodeHttpRequestUriInvalid
    | ErrorCodeHttpRequestUriTooLong
    | ErrorCodeHttpRequestHeaderSectionSize
    | ErrorCodeHttpRequestHeaderSize
    | ErrorCodeHttpRequestTrailerSectionSize
    | ErrorCodeHttpRequestTrailerSize
    | ErrorCodeHttpResponseIncomplete
    | ErrorCodeHttpResponseHeaderSectionSize
    | ErrorCodeHttpResponseHeaderSize
    | ErrorCodeHttpResponseBodySize
    | ErrorCodeHttpResponseTrailerSectionSize
    | ErrorCodeHttpResponseTrailerSize
    | ErrorCodeHttpResponseTransferCoding
    | ErrorCodeHttpResponseContentCoding
    | ErrorCodeHttpResponseTimeout
    | ErrorCodeHttpUpgradeFailed
    | ErrorCodeHttpProtocolError
    | ErrorCodeLoopDetected
    | ErrorCodeConfigurationError
    | ErrorCodeInternalError;
  export interface ErrorCodeDnsTimeout {
    tag: "DNS-timeout";
  }
  export interface ErrorCodeDnsError {
    tag: "DNS-error";
    val: DnsErrorPayload;
  }
  export interface ErrorCodeDestinationNotFound {
    tag: "destination-not-found";
  }
  export interface ErrorCodeDestinationUnavailable {
    tag: "destination-unavailable";
  }
  export interface ErrorCodeDestinationIpProhibited {
    tag: "destination-IP-prohibited";
  }
  export interface ErrorCodeDestinationIpUnroutable {
    tag: "destination-IP-unroutable";
  }
  export interface ErrorCodeConnectionRefused {
    tag: "connection-refused";
  }
  export interface ErrorCodeConnectionTerminated {
    tag: "connection-terminated";
  }
  export interface ErrorCodeConnectionTimeout {
    tag: "connection-timeout";
  }
  export interface ErrorCodeConnectionReadTimeout {
    tag: "connection-read-timeout";
  }
  export interface ErrorCodeConnectionWriteTimeout {
    tag: "connection-write-timeout";
  }
  export interface ErrorCodeConnectionLimitReached {
    tag: "connection-limit-reached";
  }
  export interface ErrorCodeTlsProtocolError {
    tag: "TLS-protocol-error";
  }
  export interface ErrorCodeTlsCertificateError {
    tag: "TLS-certificate-error";
  }
  export interface ErrorCodeTlsAlertReceived {
    tag: "TLS-alert-received";
    val: TlsAlertReceivedPayload;
  }
  export interface ErrorCodeHttpRequestDenied {
    tag: "HTTP-request-denied";
  }
  export interface ErrorCodeHttpRequestLengthRequired {
    tag: "HTTP-request-length-required";
  }
  export interface ErrorCodeHttpRequestBodySize {
    tag: "HTTP-request-body-size";
    val: bigint | undefined;
  }
  export interface ErrorCodeHttpRequestMethodInvalid {
    tag: "HTTP-request-method-invalid";
  }
  export interface ErrorCodeHttpRequestUriInvalid {
    tag: "HTTP-request-URI-invalid";
  }
  export interface ErrorCodeHttpRequestUriTooLong {
    tag: "HTTP-request-URI-too-long";
  }
  export interface ErrorCodeHttpRequestHeaderSectionSize {
    tag: "HTTP-request-header-section-size";
    val: number | undefined;
  }
  export interface ErrorCodeHttpRequestHeaderSize {
    tag: "HTTP-request-header-size";
    val: FieldSizePayload | undefined;
  }
  export interface ErrorCodeHttpRequestTrailerSectionSize {
    tag: "HTTP-request-trailer-section-size";
    val: number | undefined;
  }
  export interface ErrorCodeHttpRequestTrailerSize {
    tag: "HTTP-request-trailer-size";
    val: FieldSizePayload;
  }
  export interface ErrorCodeHttpResponseIncomplete {
    tag: "HTTP-response-incomplete";
  }
  export interface ErrorCodeHttpResponseHeaderSectionSize {
    tag: "HTTP-response-header-section-size";
    val: number | undefined;
  }
  export interface ErrorCodeHttpResponseHeaderSize {
    tag: "HTTP-response-header-size";
    val: FieldSizePayload;
  }
  export interface ErrorCodeHttpResponseBodySize {
    tag: "HTTP-response-body-size";
    val: bigint | undefined;
  }
  export interface ErrorCodeHttpResponseTrailerSectionSize {
    tag: "HTTP-response-trailer-section-size";
    val: number | undefined;
  }
  export interface ErrorCodeHttpResponseTrailerSize {
    tag: "HTTP-response-trailer-size";
    val: FieldSizePayload;
  }
  export interface ErrorCodeHttpResponseTransferCoding {
    tag: "HTTP-response-transfer-coding";
    val: string | undefined;
  }
  export interface ErrorCodeHttpResponseContentCoding {
    tag: "HTTP-response-content-coding";
    val: string | undefined;
  }
  export interface ErrorCodeHttpResponseTimeout {
    tag: "HTTP-response-timeout";
  }
  export interface ErrorCodeHttpUpgradeFailed {
    tag: "HTTP-upgrade-failed";
  }
  export interface ErrorCodeHttpProtocolError {
    tag: "HTTP-protocol-error";
  }
  export interface ErrorCodeLoopDetected {
    tag: "loop-detected";
  }
  export interface ErrorCodeConfigurationError {
    tag: "configuration-error";
  }
  export interface ErrorCodeInternalError {
    tag: "internal-error";
    val: string | undefined;
  }
  export type HeaderError = HeaderErrorInvalidSyntax | HeaderErrorForbidden | HeaderErrorImmutable;
  export interface HeaderErrorInvalidSyntax {
    tag: "invalid-syntax";
  }
  export interface HeaderErrorForbidden {
    tag: "forbidden";
  }
  export interface HeaderErrorImmutable {
    tag: "immutable";
  }
  export type FieldKey = string;
  export type FieldName = FieldKey;
  export type FieldValue = Uint8Array;
  export type Headers = Fields;
  export type Trailers = Fields;
  export type StatusCode = number;
  export type Result<T, E> = { tag: "ok"; val: T } | { tag: "err"; val: E };

  export class Fields implements Disposable {
    constructor();
    static fromList(entries: Array<[FieldName, FieldValue]>): Fields;
    get(name: FieldName): Array<FieldValue>;
    has(name: FieldName): boolean;
    set(name: FieldName, value: Array<FieldValue>): void;
    "delete"(name: FieldName): void;
    append(name: FieldName, value: FieldValue): void;
    entries(): Array<[FieldName, FieldValue]>;
    clone(): Fields;
    [Symbol.dispose](): void;
  }

  export class FutureIncomingResponse implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    subscribe(): Pollable;
    get(): Result<Result<IncomingResponse, ErrorCode>, void> | undefined;
    [Symbol.dispose](): void;
  }

  export class FutureTrailers implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    subscribe(): Pollable;
    get(): Result<Result<Trailers | undefined, ErrorCode>, void> | undefined;
    [Symbol.dispose](): void;
  }

  export class IncomingBody implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    stream(): InputStream;
    static finish(this_: IncomingBody): FutureTrailers;
    [Symbol.dispose](): void;
  }

  export class IncomingRequest implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    method(): Method;
    pathWithQuery(): string | undefined;
    scheme(): Scheme | undefined;
    authority(): string | undefined;
    headers(): Headers;
    consume(): IncomingBody;
    [Symbol.dispose](): void;
  }

  export class IncomingResponse implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    status(): StatusCode;
    headers(): Headers;
    consume(): IncomingBody;
    [Symbol.dispose](): void;
  }

  export class OutgoingBody implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    write(): OutputStream;
    static finish(this_: OutgoingBody, trailers: Trailers | undefined): void;
    [Symbol.dispose](): void;
  }

  export class OutgoingRequest implements Disposable {
    constructor(headers: Headers);
    body(): OutgoingBody;
    method(): Method;
    setMethod(method: Method): void;
    pathWithQuery(): string | undefined;
    setPathWithQuery(pathWithQuery: string | undefined): void;
    scheme(): Scheme | undefined;
    setScheme(scheme: Scheme | undefined): void;
    authority(): string | undefined;
    setAuthority(authority: string | undefined): void;
    headers(): Headers;
    [Symbol.dispose](): void;
  }

  export class OutgoingResponse implements Disposable {
    constructor(headers: Headers);
    statusCode(): StatusCode;
    setStatusCode(statusCode: StatusCode): void;
    headers(): Headers;
    body(): OutgoingBody;
    [Symbol.dispose](): void;
  }

  export class RequestOptions implements Disposable {
    constructor();
    connectTimeout(): Duration | undefined;
    setConnectTimeout(duration: Duration | undefined): void;
    firstByteTimeout(): Duration | undefined;
    setFirstByteTimeout(duration: Duration | undefined): void;
    betweenBytesTimeout(): Duration | undefined;
    setBetweenBytesTimeout(duration: Duration | undefined): void;
    [Symbol.dispose](): void;
  }

  export class ResponseOutparam implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    static set(param: ResponseOutparam, response: Result<OutgoingResponse, ErrorCode>): void;
    [Symbol.dispose](): void;
  }
}
declare module "wasi:http/outgoing-handler@0.2.12" {
  export function handle(
    request: OutgoingRequest,
    options: RequestOptions | undefined,
  ): FutureIncomingResponse;
  export type OutgoingRequest = import("wasi:http/types@0.2.12").OutgoingRequest;
  export type RequestOptions = import("wasi:http/types@0.2.12").RequestOptions;
  export type FutureIncomingResponse = import("wasi:http/types@0.2.12").FutureIncomingResponse;
  export type ErrorCode = import("wasi:http/types@0.2.12").ErrorCode;
}
declare module "wasi:http/incoming-handler@0.2.12" {
  export function handle(request: IncomingRequest, responseOut: ResponseOutparam): void;
  export type IncomingRequest = import("wasi:http/types@0.2.12").IncomingRequest;
  export type ResponseOutparam = import("wasi:http/types@0.2.12").ResponseOutparam;
}
declare module "wasi:filesystem/types@0.2.12" {
  export function filesystemErrorCode(err: Error): ErrorCode | undefined;
  export type InputStream = import("wasi:io/streams@0.2.12").InputStream;
  export type OutputStream = import("wasi:io/streams@0.2.12").OutputStream;
  export type Error = import("wasi:io/streams@0.2.12").Error;
  export type Datetime = import("wasi:clocks/wall-clock@0.2.12").Datetime;
  export type Filesize = bigint;
  /**
   * # Variants
   *
   * ## `"unknown"`
   *
   * ## `"block-device"`
   *
   * ## `"character-device"`
   *
   * ## `"directory"`
   *
   * ## `"fifo"`
   *
   * ## `"symbolic-link"`
   *
   * ## `"regular-file"`
   *
   * ## `"socket"`
   */
  export type DescriptorType =
    | "unknown"
    | "block-device"
    | "character-device"
    | "directory"
    | "fifo"
    | "symbolic-link"
    | "regular-file"
    | "socket";
  export interface DescriptorFlags {
    read?: boolean;
    write?: boolean;
    fileIntegritySync?: boolean;
    dataIntegritySync?: boolean;
    requestedWriteSync?: boolean;
    mutateDirectory?: boolean;
  }
  export interface PathFlags {
    symlinkFollow?: boolean;
  }
  export interface OpenFlags {
    create?: boolean;
    directory?: boolean;
    exclusive?: boolean;
    truncate?: boolean;
  }
  export type LinkCount = bigint;
  export interface DescriptorStat {
    type: DescriptorType;
    linkCount: LinkCount;
    size: Filesize;
    dataAccessTimestamp?: Datetime;
    dataModificationTimestamp?: Datetime;
    statusChangeTimestamp?: Datetime;
  }
  export type NewTimestamp = NewTimestampNoChange | NewTimestampNow | NewTimestampTimestamp;
  export interface NewTimestampNoChange {
    tag: "no-change";
  }
  export interface NewTimestampNow {
    tag: "now";
  }
  export interface NewTimestampTimestamp {
    tag: "timestamp";
    val: Datetime;
  }
  export interface DirectoryEntry {
    type: DescriptorType;
    name: string;
  }
  /**
   * # Variants
   *
   * ## `"access"`
   *
   * ## `"would-block"`
   *
   * ## `"already"`
   *
   * ## `"bad-descriptor"`
   *
   * ## `"busy"`
   *
   * ## `"deadlock"`
   *
   * ## `"quota"`
   *
   * ## `"exist"`
   *
   * ## `"file-too-large"`
   *
   * ## `"illegal-byte-sequence"`
   *
   * ## `"in-progress"`
   *
   * ## `"interrupted"`
   *
   * ## `"invalid"`
   *
   * ## `"io"`
   *
   * ## `"is-directory"`
   *
   * ## `"loop"`
   *
   * ## `"too-many-links"`
   *
   * ## `"message-size"`
   *
   * ## `"name-too-long"`
   *
   * ## `"no-device"`
   *
   * ## `"no-entry"`
   *
   * ## `"no-lock"`
   *
   * ## `"insufficient-memory"`
   *
   * ## `"insufficient-space"`
   *
   * ## `"not-directory"`
   *
   * ## `"not-empty"`
   *
   * ## `"not-recoverable"`
   *
   * ## `"unsupported"`
   *
   * ## `"no-tty"`
   *
   * ## `"no-such-device"`
   *
   * ## `"overflow"`
   *
   * ## `"not-permitted"`
   *
   * ## `"pipe"`
   *
   * ## `"read-only"`
   *
   * ## `"invalid-seek"`
   *
   * ## `"text-file-busy"`
   *
   * ## `"cross-device"`
   */
  export type ErrorCode =
    | "access"
    | "would-block"
    | "already"
    | "bad-descriptor"
    | "busy"
    | "deadlock"
    | "quota"
    | "exist"
    | "file-too-large"
    | "illegal-byte-sequence"
    | "in-progress"
    | "interrupted"
    | "invalid"
    | "io"
    | "is-directory"
    | "loop"
    | "too-many-links"
    | "message-size"
    | "name-too-long"
    | "no-device"
    | "no-entry"
    | "no-lock"
    | "insufficient-memory"
    | "insufficient-space"
    | "not-directory"
    | "not-empty"
    | "not-recoverable"
    | "unsupported"
    | "no-tty"
    | "no-such-device"
    | "overflow"
    | "not-permitted"
    | "pipe"
    | "read-only"
    | "invalid-seek"
    | "text-file-busy"
    | "cross-device";
  /**
   * # Variants
   *
   * ## `"normal"`
   *
   * ## `"sequential"`
   *
   * ## `"random"`
   *
   * ## `"will-need"`
   *
   * ## `"dont-need"`
   *
   * ## `"no-reuse"`
   */
  export type Advice = "normal" | "sequential" | "random" | "will-need" | "dont-need" | "no-reuse";
  export interface MetadataHashValue {
    lower: bigint;
    upper: bigint;
  }

  export class Descriptor implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    readViaStream(offset: Filesize): InputStream;
    writeViaStream(offset: Filesize): OutputStream;
    appendViaStream(): OutputStream;
    advise(offset: Filesize, length: Filesize, advice: Advice): void;
    syncData(): void;
    getFlags(): DescriptorFlags;
    getType(): DescriptorType;
    setSize(size: Filesize): void;
    setTimes(dataAccessTimestamp: NewTimestamp, dataModificationTimestamp: NewTimestamp): void;
    read(length: Filesize, offset: Filesize): [Uint8Array, boolean];
    write(buffer: Uint8Array, offset: Filesize): Filesize;
    readDirectory(): DirectoryEntryStream;
    sync(): void;
    createDirectoryAt(path: string): void;
    stat(): DescriptorStat;
    statAt(pathFlags: PathFlags, path: string): DescriptorStat;
    setTimesAt(
      pathFlags: PathFlags,
      path: string,
      dataAccessTimestamp: NewTimestamp,
      dataModificationTimestamp: NewTimestamp,
    ): void;
    linkAt(
      oldPathFlags: PathFlags,
      oldPath: string,
      newDescriptor: Descriptor,
      newPath: string,
    ): void;
    openAt(
      pathFlags: PathFlags,
      path: string,
      openFlags: OpenFlags,
      flags: DescriptorFlags,
    ): Descriptor;
    readlinkAt(path: string): string;
    removeDirectoryAt(path: string): void;
    renameAt(oldPath: string, newDescriptor: Descriptor, newPath: string): void;
    symlinkAt(oldPath: string, newPath: string): void;
    unlinkFileAt(path: string): void;
    isSameObject(other: Descriptor): boolean;
    metadataHash(): MetadataHashValue;
    metadataHashAt(pathFlags: PathFlags, path: string): MetadataHashValue;
    [Symbol.dispose](): void;
  }

  export class DirectoryEntryStream implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    readDirectoryEntry(): DirectoryEntry | undefined;
    [Symbol.dispose](): void;
  }
}
declare module "wasi:cli/environment@0.2.12" {
  export function getEnvironment(): Array<[string, string]>;
}
declare module "wasi:filesystem/preopens@0.2.12" {
  export function getDirectories(): Array<[Descriptor, string]>;
  export type Descriptor = import("wasi:filesystem/types@0.2.12").Descriptor;
}
declare module "trailbase:database/sqlite@0.1.1" {
  /**
   * Deprecated since 0.1.1: use the `transaction` resource.
   */
  export function txBegin(): void;
  /**
   * Deprecated since 0.1.1: use the `transaction` resource.
   */
  export function txCommit(): void;
  /**
   * Deprecated since 0.1.1: use the `transaction` resource.
   */
  export function txRollback(): void;
  /**
   * Deprecated since 0.1.1: use the `transaction` resource.
   */
  export function txExecute(query: string, params: Array<Value>): bigint;
  /**
   * Deprecated since 0.1.1: use the `transaction` resource.
   */
  export function txQuery(query: string, params: Array<Value>): Array<Array<Value>>;
  export type TxError = TxErrorOther;
  export interface TxErrorOther {
    tag: "other";
    val: string;
  }
  /**
   * Order is part of the ABI.
   */
  export type Value = ValueNull | ValueText | ValueBlob | ValueInteger | ValueReal;
  export interface ValueNull {
    tag: "null";
  }
  export interface ValueText {
    tag: "text";
    val: string;
  }
  export interface ValueBlob {
    tag: "blob";
    val: Uint8Array;
  }
  export interface ValueInteger {
    tag: "integer";
    val: bigint;
  }
  export interface ValueReal {
    tag: "real";
    val: number;
  }

  export class Transaction implements Disposable {
    constructor();
    commit(): void;
    rollback(): void;
    execute(query: string, params: Array<Value>): bigint;
    query(query: string, params: Array<Value>): Array<Array<Value>>;
    [Symbol.dispose](): void;
  }
}
declare module "wasi:keyvalue/store@0.2.0-draft" {
  /**
   * Get the bucket with the specified identifier.
   */
  export function open(identifier: string): Bucket;
  /**
   * The set of errors which may be raised by functions in this package.
   */
  export type Error = ErrorNoSuchStore | ErrorAccessDenied | ErrorOther;
  export interface ErrorNoSuchStore {
    tag: "no-such-store";
  }
  export interface ErrorAccessDenied {
    tag: "access-denied";
  }
  export interface ErrorOther {
    tag: "other";
    val: string;
  }
  /**
   * A response to a `list-keys` operation.
   */
  export interface KeyResponse {
    keys: Array<string>;
    cursor?: bigint;
  }

  export class Bucket implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    get(key: string): Uint8Array | undefined;
    set(key: string, value: Uint8Array): void;
    "delete"(key: string): void;
    exists(key: string): boolean;
    listKeys(cursor: bigint | undefined): KeyResponse;
    [Symbol.dispose](): void;
  }
}
declare module "wasi:keyvalue/atomics@0.2.0-draft" {
  export function increment(bucket: Bucket, key: string, delta: bigint): bigint;
  export type Bucket = import("wasi:keyvalue/store@0.2.0-draft").Bucket;
  export type Error = import("wasi:keyvalue/store@0.2.0-draft").Error;
}
declare module "trailbase:component/init-endpoint@0.2.0" {
  export function getManifest(args: string): string;
}
declare module "trailbase:component/sqlite-function-endpoint@0.2.0" {
  export function dispatchScalarFunction(args: Arguments): Value;
  export type Error = ErrorOther;
  export interface ErrorOther {
    tag: "other";
    val: string;
  }
  /**
   * Order is part of the ABI.
   */
  export type Value = ValueNull | ValueText | ValueBlob | ValueInteger | ValueReal;
  export interface ValueNull {
    tag: "null";
  }
  export interface ValueText {
    tag: "text";
    val: string;
  }
  export interface ValueBlob {
    tag: "blob";
    val: Uint8Array;
  }
  export interface ValueInteger {
    tag: "integer";
    val: bigint;
  }
  export interface ValueReal {
    tag: "real";
    val: number;
  }
  export interface Arguments {
    functionName: string;
    arguments: Array<Value>;
  }
}
