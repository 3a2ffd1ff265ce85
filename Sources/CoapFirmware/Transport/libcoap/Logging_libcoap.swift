internal import CCoap
#if canImport(Glibc)
import Glibc
#endif

/// Sends libcoap's own log and PDU dumps to stderr. Its default handler
/// writes to stdout, which would corrupt `--json` output.
func routeCoapLogsToStderr() {
    coap_set_show_pdu_output(0)
    coap_set_log_handler { _, message in
        guard let message else { return }
        let length = strlen(message)
        _ = write(2, message, length)
    }
}
