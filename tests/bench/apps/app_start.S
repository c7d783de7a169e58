/* Test app entry: CCOUNT first, so the app reports the instruction count at its entry. */
    .section .entry.text, "ax"
    .global app_entry
    .align 4
app_entry:
    rsr     a2, ccount
    movi    a1, 0x3FFFFFF0
    call0   app_main
1:  j       1b

#ifdef FILLER_FILE
/* Code-like filler so irom0 has a realistic size and compressibility. */
    .section .irom0.filler, "ax"
    .incbin FILLER_FILE
#endif
