; A boot sector for the lifecycle tests: SeaBIOS loads it at 0000:7C00 from
; the first disk. It says hello on COM1 and on the VGA text screen, as
; hello_boot.asm does, reads the ACPI PM timer twice (it must move), then
; ends the way the -D define chooses:
;   (none)        halts with interrupts on (the vCPU blocks)
;   S5            ACPI soft off: SLP_TYP 0 | SLP_EN to PM1a_CNT (0xb004,
;                 where SeaBIOS puts the PIIX4's PM block)
;   TRIPLE        protected mode, an empty IDT, int3: #GP, #DF, triple fault
;   DF_ONLY       protected mode, an IDT whose only present gate is #DF's,
;                 int3: a processor delivers #NP, then #DF to its handler
;                 (which says so on COM1); v86 gives up, and the domain crashes
;   RESET_KBD     the 8042's pulse-reset command (0xFE to port 0x64)
;   RESET_CF9     a hard reset through the PIIX3's reset control (0xCF9)
;                 (both once a byte arrives on COM1, so that a test decides
;                 which boot resets and the restarted guest stays up)
;   PWRBTN        waits for the ACPI power button: PWRBTN_EN set in PM1a_EN
;                 (0xb002), the SCI (IRQ 9, vector 0x71 behind SeaBIOS's
;                 slave PIC) unmasked; its handler says so and enters S5
bits 16
org 0x7c00
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    mov si, msg
    call serial
    ; The PM timer at 0xb008 (24 bits at 3.58 MHz): two reads some time apart differ.
    mov dx, 0xb008
    in eax, dx
    mov ebx, eax
    mov cx, 0x4000
.spin:
    loop .spin
    in eax, dx
    mov si, pmt_same
    cmp eax, ebx
    je .pmt
    mov si, pmt_moves
.pmt:
    call serial
    mov ax, 0xb800
    mov es, ax
    mov di, 160 * 12            ; row 12, column 0
    mov si, screen
    mov ah, 0x1f                ; white on blue
.cell:
    lodsb
    test al, al
    jz .action
    stosw
    jmp .cell
.action:
%ifdef S5
    mov si, say_s5
    call serial
    mov dx, 0xb004
    mov ax, 0x2000              ; SLP_EN, SLP_TYP 0 (\_S5 on QEMU's PIIX4)
    out dx, ax
%elifdef PWRBTN
    mov word [0x71 * 4], .sci_handler
    mov word [0x71 * 4 + 2], 0
    mov dx, 0xb002
    mov ax, 0x0100              ; PWRBTN_EN
    out dx, ax
    in al, 0xa1
    and al, ~0x02               ; IRQ 9 on the slave
    out 0xa1, al
    in al, 0x21
    and al, ~0x04               ; the cascade on the master
    out 0x21, al
    mov si, say_wait
    call serial
    jmp .halt
.sci_handler:
    mov dx, 0xb000
    in ax, dx
    test ax, 0x0100
    jz .spurious
    mov si, say_sci
    call serial
    mov dx, 0xb004
    mov ax, 0x2000              ; S5
    out dx, ax
.spurious:
    mov al, 0x20
    out 0xa0, al
    out 0x20, al
    iret
%elifdef RESET_KBD
    call wait_key
    mov si, say_reset
    call serial
    mov al, 0xfe
    out 0x64, al
%elifdef RESET_CF9
    call wait_key
    mov si, say_reset
    call serial
    mov dx, 0xcf9
    mov al, 0x06                ; hard reset
    out dx, al
%elifdef DF_ONLY
    mov si, say_df
    call serial
    ; IDT at 0x1000, 256 gates, all clear but vector 8: an interrupt gate to df_handler.
    xor ax, ax
    mov es, ax
    mov di, 0x1000
    mov cx, 0x400
    rep stosw
    mov word [0x1000 + 8*8], df_handler
    mov word [0x1000 + 8*8 + 2], 0x08
    mov word [0x1000 + 8*8 + 4], 0x8e00
    mov word [0x1000 + 8*8 + 6], 0
    lgdt [gdt_desc]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp 0x08:pm32
bits 32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov ss, ax
    mov esp, 0x7000
    lidt [idt_full]
    int3
df_handler:
    mov esi, say_dfh
    mov dx, 0x3f8
.dfout:
    lodsb
    test al, al
    jz .dfhalt
    out dx, al
    jmp .dfout
.dfhalt:
    hlt
    jmp .dfhalt
bits 16
%elifdef TRIPLE
    mov si, say_triple
    call serial
    lgdt [gdt_desc]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp 0x08:pm32
bits 32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov ss, ax
    lidt [idt_empty]
    int3
bits 16
%endif
.halt:
    sti
    hlt
    jmp .halt

%ifdef RESET_KBD
%define WAIT_KEY
%endif
%ifdef RESET_CF9
%define WAIT_KEY
%endif
%ifdef WAIT_KEY
wait_key:                       ; until COM1 has a byte (LSR data ready)
    mov si, say_key
    call serial
    mov dx, 0x3fd
.poll:
    in al, dx
    test al, 1
    jz .poll
    ret
say_key:    db "a key resets", 13, 10, 0
%endif

serial:                         ; COM1, one byte at a time, SI = string
    mov dx, 0x3f8
.next:
    lodsb
    test al, al
    jz .done
    out dx, al
    jmp .next
.done:
    ret

msg:        db "hello from an HVM boot sector", 13, 10, 0
pmt_moves:  db "PM timer moves", 13, 10, 0
pmt_same:   db "PM timer stuck", 13, 10, 0
screen:     db "XENEMU HVM BOOT SECTOR", 0
%ifdef S5
say_s5:     db "ACPI S5", 13, 10, 0
%endif
%ifdef PWRBTN
say_wait:   db "waiting for the power button", 13, 10, 0
say_sci:    db "SCI: power button", 13, 10, 0
%endif
%ifdef RESET_KBD
say_reset:  db "reset", 13, 10, 0
%endif
%ifdef RESET_CF9
say_reset:  db "reset", 13, 10, 0
%endif
%ifdef DF_ONLY
say_df:     db "int3 without its gate", 13, 10, 0
say_dfh:    db "double fault handler", 13, 10, 0
idt_full:   dw 256*8 - 1
            dd 0x1000
%define GDT
%endif
%ifdef TRIPLE
say_triple: db "triple fault", 13, 10, 0
%define GDT
%endif
%ifdef GDT
align 8
gdt:        dq 0
            dq 0x00cf9a000000ffff   ; 0x08 code, flat
            dq 0x00cf92000000ffff   ; 0x10 data, flat
gdt_desc:   dw gdt_desc - gdt - 1
            dd gdt
idt_empty:  dw 0
            dd 0
%endif
    times 510 - ($ - $$) db 0
    dw 0xaa55
