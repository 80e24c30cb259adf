/** RTP's fixed header (RFC 3550 §5.1) as the host writes it: version 2, no padding, no extension, no CSRC. */
export const RTP_HEADER_SIZE = 12;
