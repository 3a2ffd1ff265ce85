#if canImport(Glibc)
import Glibc
#endif

// coap-fw-fuzz TARGET [libFuzzer options] CORPUS...   (fuzzing build: -D FUZZING, -sanitize=fuzzer)
// coap-fw-fuzz replay TARGET FILE-OR-FOLDER...          (any build: runs inputs once, for regressions)

nonisolated(unsafe) var selectedTarget = FuzzTarget.manifestView

func printError(_ text: String) {
    _ = text.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
}

func usage() -> Never {
    printError("usage: coap-fw-fuzz TARGET [libFuzzer args] | coap-fw-fuzz replay TARGET PATH...\ntargets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n")
    exit(2)
}

func files(under path: String) -> [String] {
    var info = stat()
    guard stat(path, &info) == 0 else { return [] }
    guard (info.st_mode & S_IFMT) == S_IFDIR else { return [path] }
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var out: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name.hasPrefix(".") { continue }
        out += files(under: "\(path)/\(name)")
    }
    return out.sorted()
}

func readAll(_ path: String) -> [UInt8] {
    guard let f = fopen(path, "rb") else { return [] }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n <= 0 { break }
        out += buffer[0..<n]
    }
    return out
}

let args = CommandLine.arguments
guard args.count >= 2 else { usage() }
if args[1] == "replay" {
    guard args.count >= 4, let target = FuzzTarget(rawValue: args[2]) else { usage() }
    var count = 0
    for path in args[3...] {
        for file in files(under: path) {
            let data = readAll(file)
            data.withUnsafeBytes { target.run($0) }
            count += 1
        }
    }
    print("\(target.rawValue): \(count) inputs replayed, no crash")
    exit(0)
}
// libFuzzer re-executes itself for -merge and -fork with only its own
// options, so the target also travels in the environment.
var fuzzerOptions = Array(args.dropFirst(2))
if let target = FuzzTarget(rawValue: args[1]) {
    selectedTarget = target
    setenv("COAPFW_FUZZ_TARGET", target.rawValue, 1)
} else if let name = getenv("COAPFW_FUZZ_TARGET"), let target = FuzzTarget(rawValue: String(cString: name)) {
    selectedTarget = target
    fuzzerOptions = Array(args.dropFirst(1))
} else {
    usage()
}

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

// libFuzzer sees the program name and its own options, not the target name.
var fuzzerArgs: [UnsafeMutablePointer<CChar>?] = ([args[0]] + fuzzerOptions).map { strdup($0) } + [nil]
var argc = Int32(fuzzerArgs.count - 1)
let status = fuzzerArgs.withUnsafeMutableBufferPointer { buffer -> Int32 in
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        selectedTarget.run(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
}
exit(status)
#else
printError("coap-fw-fuzz: this build has no libFuzzer; build with `make fuzz`, or use `replay`\n")
exit(2)
#endif
