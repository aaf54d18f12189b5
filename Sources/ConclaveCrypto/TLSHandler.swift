public import NIOCore

/// Events the TLS handler sends up the pipeline (`userInboundEventTriggered`).
public enum TLSEvent: Sendable {
    /// The handshake finished and the peer verified; application data may flow.
    case handshakeCompleted(TLSSessionInfo)
    /// The peer sent close_notify; the handler answers with its own and closes the channel.
    case closeNotifyReceived
}

/// A SwiftNIO handler that runs TLS over the channel with a `TLSConnection`: ciphertext below,
/// plaintext `ByteBuffer`s above. Server or client, depending on the connection's context.
///
/// - The handshake starts when the channel becomes active and must finish within
///   `handshakeTimeout`; then `TLSEvent.handshakeCompleted` goes up with the session facts,
///   including the verified peer certificate (mutual TLS).
/// - Writes made before the handshake completes wait and are sent after it.
/// - `close()` sends close_notify, then closes the transport (RFC 8446 §6.1 does not require
///   waiting for the peer's). A peer's close_notify is answered and the channel closed.
/// - The transport closing without close_notify raises `TLSError.uncleanShutdown`.
public final class TLSHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State { case idle, handshaking, active, closing, closed }

    private let connection: TLSConnection
    private let handshakeTimeout: TimeAmount?
    private var state = State.idle
    private var timeout: Scheduled<Void>?
    private var pendingWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var flushRequested = false
    private var closePromises: [EventLoopPromise<Void>] = []

    /// The session facts once the handshake has completed.
    public private(set) var sessionInfo: TLSSessionInfo?

    public init(connection: TLSConnection, handshakeTimeout: TimeAmount? = .seconds(10)) {
        self.connection = connection
        self.handshakeTimeout = handshakeTimeout
    }

    /// A handler for a new connection from `context`. `serverHostname` (client only) is sent
    /// as SNI and checked against the server's certificate.
    public convenience init(context: TLSContext, serverHostname: String? = nil, handshakeTimeout: TimeAmount? = .seconds(10)) throws {
        self.init(connection: try TLSConnection(context: context, serverHostname: serverHostname), handshakeTimeout: handshakeTimeout)
    }

    /// TLS exporter on the established connection (see `TLSConnection.exportKeyingMaterial`).
    /// Call on the channel's event loop.
    public func exportKeyingMaterial(label: String, context: [UInt8]? = nil, length: Int) throws -> [UInt8] {
        guard state == .active || state == .closing else { throw TLSError.connectionNotEstablished }
        return try connection.exportKeyingMaterial(label: label, context: context, length: length)
    }

    // MARK: Inbound

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { beginHandshake(context: context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
        failPendingWrites(ChannelError.ioOnClosedChannel)
    }

    public func channelActive(context: ChannelHandlerContext) {
        beginHandshake(context: context)
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { connection.receive($0) }
        switch state {
        case .idle:
            beginHandshake(context: context)
        case .handshaking:
            advanceHandshake(context: context)
        case .active, .closing:
            readPlaintext(context: context)
        case .closed:
            break
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        let previous = state
        state = .closed
        failPendingWrites(ChannelError.ioOnClosedChannel)
        switch previous {
        case .handshaking:
            context.fireErrorCaught(TLSError.closedDuringHandshake)
        case .active where !connection.receivedShutdown:
            context.fireErrorCaught(TLSError.uncleanShutdown)
        default:
            break
        }
        context.fireChannelInactive()
    }

    private func beginHandshake(context: ChannelHandlerContext) {
        guard state == .idle else { return }
        state = .handshaking
        if let handshakeTimeout {
            timeout = context.eventLoop.assumeIsolated().scheduleTask(in: handshakeTimeout) { [self] in
                guard state == .handshaking else { return }
                fail(context: context, error: TLSError.handshakeTimeout)
            }
        }
        advanceHandshake(context: context)
    }

    private func advanceHandshake(context: ChannelHandlerContext) {
        switch connection.handshake() {
        case .incomplete:
            flushCiphertext(context: context)
        case .complete:
            timeout?.cancel()
            state = .active
            flushCiphertext(context: context)
            let info = connection.sessionInfo
            sessionInfo = info
            context.fireUserInboundEventTriggered(TLSEvent.handshakeCompleted(info))
            if flushRequested { encryptPendingWrites(context: context) }
            // Application data may have arrived with the last handshake flight.
            readPlaintext(context: context)
        case .failed(let error):
            flushCiphertext(context: context)  // the alert that tells the peer why
            fail(context: context, error: error)
        }
    }

    private func readPlaintext(context: ChannelHandlerContext) {
        reading: while state == .active || state == .closing {
            switch connection.read() {
            case .data(let bytes):
                context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: bytes)))
            case .incomplete:
                break reading
            case .closed:
                context.fireUserInboundEventTriggered(TLSEvent.closeNotifyReceived)
                closeAfterCloseNotify(context: context)
                break reading
            case .failed(let error):
                fail(context: context, error: error)
                break reading
            }
        }
        flushCiphertext(context: context)
    }

    // MARK: Outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard state != .closed, state != .closing else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        pendingWrites.append((unwrapOutboundIn(data), promise))
    }

    public func flush(context: ChannelHandlerContext) {
        flushRequested = true
        if state == .active { encryptPendingWrites(context: context) }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all else {
            context.close(mode: mode, promise: promise)
            return
        }
        switch state {
        case .active:
            encryptPendingWrites(context: context)
            state = .closing
            if let promise { closePromises.append(promise) }
            connection.shutdown()
            sendCloseNotifyThenClose(context: context)
        case .closing:
            if let promise { closePromises.append(promise) }
        case .idle, .handshaking, .closed:
            timeout?.cancel()
            state = .closed
            failPendingWrites(ChannelError.ioOnClosedChannel)
            context.close(mode: mode, promise: promise)
        }
    }

    private func encryptPendingWrites(context: ChannelHandlerContext) {
        let writes = pendingWrites
        pendingWrites.removeAll()
        flushRequested = false
        for (buffer, promise) in writes {
            do {
                try buffer.withUnsafeReadableBytes { try connection.write($0) }
            } catch {
                promise?.fail(error)
                fail(context: context, error: error)
                return
            }
            let ciphertext = connection.takeOutbound()
            if ciphertext.isEmpty {
                promise?.succeed(())
            } else {
                context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: ciphertext)), promise: promise)
            }
        }
        context.flush()
    }

    private func flushCiphertext(context: ChannelHandlerContext) {
        guard connection.hasOutbound else { return }
        let bytes = connection.takeOutbound()
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
    }

    /// Answers the peer's close_notify with ours, then closes the transport.
    private func closeAfterCloseNotify(context: ChannelHandlerContext) {
        guard state == .active else {
            // We had already sent ours; the exchange is complete.
            return
        }
        state = .closing
        connection.shutdown()
        sendCloseNotifyThenClose(context: context)
    }

    private func sendCloseNotifyThenClose(context: ChannelHandlerContext) {
        let written = context.eventLoop.makePromise(of: Void.self)
        let bytes = connection.takeOutbound()
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: written)
        written.futureResult.assumeIsolated().whenComplete { [self] _ in
            let promises = closePromises
            closePromises.removeAll()
            let closed = context.eventLoop.makePromise(of: Void.self)
            context.close(promise: closed)
            for promise in promises { closed.futureResult.cascade(to: promise) }
        }
    }

    private func fail(context: ChannelHandlerContext, error: Error) {
        timeout?.cancel()
        guard state != .closed else { return }
        state = .closed
        failPendingWrites(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private func failPendingWrites(_ error: Error) {
        let writes = pendingWrites
        pendingWrites.removeAll()
        for (_, promise) in writes { promise?.fail(error) }
    }
}

@available(*, unavailable)
extension TLSHandler: Sendable {}
