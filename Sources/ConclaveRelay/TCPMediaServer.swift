import ConclaveWire
import NIOCore
import NIOPosix

/// RFC 4571 framing: each CMF frame is preceded by its length as a 16-bit big-endian integer.
struct MediaFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = [UInt8]

    struct FramingError: Error {}

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) else { return .needMoreData }
        // A peer that announces a frame the relay would never accept is not speaking CMF.
        guard Int(length) >= MediaFrameHeader.size, Int(length) <= MediaFrameHeader.maximumFrameSize else {
            throw FramingError()
        }
        guard buffer.readableBytes >= 2 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        context.fireChannelRead(Self.wrapInboundOut(buffer.readBytes(length: Int(length))!))
        return .continue
    }
}

/// A client's TCP connection, as a leg's latched transport. Sends from any thread.
public final class TCPMediaConnection: @unchecked Sendable {
    private let channel: Channel
    let remoteDescription: String
    let remotePort: UInt16
    /// Bytes queued but not yet written: beyond this the relay drops rather than buffers.
    static let highWaterMark = 256 * 1024

    init(channel: Channel) {
        self.channel = channel
        remoteDescription = channel.remoteAddress?.description ?? "unknown"
        remotePort = channel.remoteAddress?.port.map { UInt16(clamping: $0) } ?? 0
    }

    /// Queues one frame with its length prefix; false when the connection is backed up or gone.
    func send(_ frame: UnsafeRawBufferPointer) -> Bool {
        guard channel.isActive, channel.isWritable else { return false }
        var buffer = channel.allocator.buffer(capacity: 2 + frame.count)
        buffer.writeInteger(UInt16(frame.count))
        buffer.writeBytes(frame)
        channel.writeAndFlush(buffer, promise: nil)
        return true
    }
}

/// Hands each decoded frame to the relay thread that owns the frame's leg.
final class TCPMediaHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = [UInt8]
    private let relay: Relay
    private var connection: TCPMediaConnection?

    init(relay: Relay) { self.relay = relay }

    func channelActive(context: ChannelHandlerContext) {
        connection = TCPMediaConnection(channel: context.channel)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard let connection else { return }
        relay.deliverTCPFrame(frame, from: connection)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let connection { relay.tcpConnectionClosed(connection) }
        connection = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
