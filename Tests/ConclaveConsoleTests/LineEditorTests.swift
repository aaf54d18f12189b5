import Testing
@testable import ConclaveConsole

@Suite struct LineEditorTests {
    func feed(_ text: String, secret: Bool = false, maximumLength: Int = 1024) -> LineEditor.Output {
        var editor = LineEditor(maximumLength: maximumLength)
        editor.isSecret = secret
        return editor.feed(Array(text.utf8))
    }

    @Test func enterEndsALineWhateverTheTerminalSends() {
        #expect(feed("abc\r").events == [.line("abc")])
        #expect(feed("abc\n").events == [.line("abc")])
        #expect(feed("abc\r\ndef\r\n").events == [.line("abc"), .line("def")])  // CR LF is one Enter
        #expect(feed("\r\r").events == [.line(""), .line("")])
    }

    @Test func backspaceAndDeleteRubOutOneCharacter() {
        let output = feed("abx\u{7f}c\u{8}d\r")
        #expect(output.events == [.line("abd")])
        #expect(output.echo == Array("abx".utf8) + [8, 32, 8] + Array("c".utf8) + [8, 32, 8] + Array("d\r\n".utf8))
        #expect(feed("\u{7f}\u{7f}a\r").events == [.line("a")])  // nothing to delete: nothing echoed
        #expect(feed("\u{7f}").echo.isEmpty)
    }

    @Test func backspaceRemovesAWholeUTF8Character() {
        #expect(feed("é€\u{7f}\r").events == [.line("é")])
    }

    @Test func controlUClearsTheLine() {
        let output = feed("secret words\u{15}ok\r")
        #expect(output.events == [.line("ok")])
    }

    @Test func controlCCancelsAndForgetsThePartialLine() {
        #expect(feed("half typed\u{3}next\r").events == [.cancel, .line("next")])
    }

    @Test func controlDLogsOutOnlyOnAnEmptyLine() {
        #expect(feed("\u{4}").events == [.logout])
        #expect(feed("ab\u{4}c\r").events == [.line("abc")])
    }

    @Test func escapeSequencesAreSwallowed() {
        // Up arrow (CSI A), F5 (CSI 15~), SS3 arrow (ESC O D), ESC x.
        #expect(feed("a\u{1b}[Ab\u{1b}[15~c\u{1b}ODd\u{1b}xe\r").events == [.line("abcde")])
    }

    @Test func secretsAreNeverEchoed() {
        let output = feed("hunter22\u{7f}2\r", secret: true)
        #expect(output.events == [.line("hunter22")])
        #expect(output.echo == [13, 10])
    }

    @Test func lineLengthIsBoundedWithABell() {
        let output = feed("abcdef\r", maximumLength: 4)
        #expect(output.events == [.line("abcd")])
        #expect(output.echo.filter { $0 == 7 }.count == 2)
    }

    @Test func otherControlCharactersAreIgnoredAndTabIsASpace() {
        #expect(feed("a\u{1}\u{2}b\tc\r").events == [.line("ab c")])
    }

    @Test func bytesMayArriveOneByOne() {
        var editor = LineEditor()
        var events: [LineEditor.Event] = []
        for byte in Array("ab\r\ncd\r".utf8) { events += editor.feed([byte]).events }
        #expect(events == [.line("ab"), .line("cd")])
        #expect(editor.pending.isEmpty)
    }
}
